package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// childEnv, when set, makes the test binary run smelt's main with the
// arguments it holds (separated by \x1f): tests start real smelt processes
// with smeltProcess, without building the binary.
const childEnv = "SMELT_TEST_AS_MAIN"

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(childEnv); ok {
		os.Args = append([]string{"smelt"}, strings.Split(args, "\x1f")...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// smeltProcess returns a command that runs smelt with args in its own
// process (the test binary, as smelt's main).
func smeltProcess(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+strings.Join(args, "\x1f"))
	return cmd
}
