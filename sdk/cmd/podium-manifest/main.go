// Command podium-manifest reads, checks and embeds the manifest of a Podium plugin, the
// JSON custom section "podium.manifest" described in sdk/ABI.md.
//
// Usage:
//
//	podium-manifest embed IN.wasm MANIFEST.json OUT.wasm   add or replace the manifest
//	podium-manifest show IN.wasm                           print the manifest
//
// Toolchains that cannot emit custom sections (Go) use embed after building;
// scripts/build-wasm.sh does this for every plugin.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/podium-rank/podium/sdk/abi"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 4 && args[0] == "embed":
		if err := embed(args[1], args[2], args[3]); err != nil {
			fmt.Fprintln(stderr, "podium-manifest:", err)
			return 1
		}
		return 0
	case len(args) == 2 && args[0] == "show":
		wasm, err := os.ReadFile(args[1])
		if err == nil {
			var m []byte
			var ok bool
			m, ok, err = abi.CustomSection(wasm, abi.ManifestSection)
			if err == nil && !ok {
				err = fmt.Errorf("%s has no %s section", args[1], abi.ManifestSection)
			}
			if err == nil {
				fmt.Fprintf(stdout, "%s\n", m)
				return 0
			}
		}
		fmt.Fprintln(stderr, "podium-manifest:", err)
		return 1
	}
	fmt.Fprintln(stderr, "usage: podium-manifest embed IN.wasm MANIFEST.json OUT.wasm | show IN.wasm")
	return 2
}

func embed(in, manifest, out string) error {
	wasm, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	m, err := os.ReadFile(manifest)
	if err != nil {
		return err
	}
	if _, err := abi.ParseManifest(m); err != nil {
		return fmt.Errorf("%s: %w", manifest, err)
	}
	res, err := abi.SetCustomSection(wasm, abi.ManifestSection, m)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, res, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}
