package main

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// allKeys renders v as YAML with every key its type accepts, including the
// omitempty ones that yaml.Marshal leaves out when unset: smelt explain
// lists each setting a recipe section can have, never only the non-zero
// ones. An unset optional section (a nil pointer to a struct, such as a
// source's filter) is shown as null with a comment saying what leaving it
// out means and where its own keys are listed.
func allKeys(v reflect.Value) (*yaml.Node, error) {
	for v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			if v.Type().Elem().Kind() == reflect.Struct {
				return allKeys(reflect.New(v.Type().Elem()).Elem())
			}
			return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null"}, nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		n := &yaml.Node{}
		if err := n.Encode(v.Interface()); err != nil {
			return nil, err
		}
		return n, nil
	}
	m := &yaml.Node{Kind: yaml.MappingNode}
	if err := addFields(m, v); err != nil {
		return nil, err
	}
	return m, nil
}

// unsetNote explains a recipe key whose section is absent unless given.
// Keys are TYPE.key.
var unsetNote = map[string]string{
	"Source.filter":   "not set: the source is not filtered at all (smelt run warns); filter: {} runs the default rules; keys: smelt explain filter",
	"Tokenizer.train": "not set: name is used; train: {vocab_size: N, sample_mb: 64} trains a byte-level BPE on the kept text instead",
	"Config.decontam": "needed by rule decontam: {index: FILE, policy: drop|gpt3} (docs/decontam-pii.md)",
	"Config.pii":      "needed by rule pii: {kinds: [email, ip, phone, credit_card, iban], placeholders: {}, private_ips: false}",
}

func addFields(m *yaml.Node, v reflect.Value) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		fv := v.Field(i)
		if strings.Contains(opts, "inline") {
			for fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					fv = reflect.New(fv.Type().Elem())
				}
				fv = fv.Elem()
			}
			if err := addFields(m, fv); err != nil {
				return err
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		key := &yaml.Node{Kind: yaml.ScalarNode, Value: name}
		var val *yaml.Node
		if note := unsetNote[t.Name()+"."+name]; fv.Kind() == reflect.Pointer && fv.IsNil() && note != "" {
			val = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Value: "null", LineComment: note}
		} else {
			var err error
			if val, err = allKeys(fv); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		m.Content = append(m.Content, key, val)
	}
	return nil
}

// marshalAllKeys is yaml.Marshal with every key (see allKeys).
func marshalAllKeys(v any) ([]byte, error) {
	n, err := allKeys(reflect.ValueOf(v))
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(n)
}
