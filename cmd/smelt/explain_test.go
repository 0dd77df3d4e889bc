package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/smelt-dev/smelt/pipelines"
	"gopkg.in/yaml.v3"
)

// yamlKeys lists the YAML keys a struct type accepts (inline fields
// flattened), as the recipe parser does.
func yamlKeys(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var keys []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		switch {
		case name == "-":
		case strings.Contains(opts, "inline"):
			keys = append(keys, yamlKeys(f.Type)...)
		case name == "":
			keys = append(keys, strings.ToLower(f.Name))
		default:
			keys = append(keys, name)
		}
	}
	return keys
}

// TestExplainListsEveryKey: smelt explain STAGE prints every key of the
// stage's recipe section, the omitempty ones included (ingest used to omit
// filter, text_field, langid, tasks and reference).
func TestExplainListsEveryKey(t *testing.T) {
	reg := pipelines.DefaultRegistry()
	n := 0
	for _, k := range reg.Kinds() {
		st := reg.Stage(k)
		if st.Defaults == nil {
			continue
		}
		out, err := runSmelt(t, "explain", k)
		if err != nil {
			t.Fatalf("explain %s: %v\n%s", k, err, out)
		}
		var got map[string]any
		if err := yaml.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("explain %s is not YAML: %v\n%s", k, err, out)
		}
		for _, key := range yamlKeys(reflect.TypeOf(st.Defaults())) {
			n++
			if _, ok := got[key]; !ok {
				t.Errorf("smelt explain %s omits %s", k, key)
			}
		}
	}
	out, _ := runSmelt(t, "explain", "ingest")
	for _, key := range []string{"filter:", "text_field:", "langid:", "tasks:", "reference:", "not filtered at all"} {
		if !strings.Contains(out, key) {
			t.Errorf("smelt explain ingest lacks %q:\n%s", key, out)
		}
	}
	if n < 40 {
		t.Errorf("checked only %d keys", n)
	}
}
