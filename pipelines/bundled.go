package pipelines

import (
	"embed"
	"sort"
	"strings"
)

//go:embed gpt3.yaml fineweb.yaml demo.yaml
var bundled embed.FS

// Bundled returns the bundled recipe called name (gpt3, fineweb, demo).
func Bundled(name string) ([]byte, bool) {
	data, err := bundled.ReadFile(name + ".yaml")
	return data, err == nil
}

// BundledNames lists the bundled recipes.
func BundledNames() []string {
	ents, _ := bundled.ReadDir(".")
	var out []string
	for _, e := range ents {
		out = append(out, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	sort.Strings(out)
	return out
}
