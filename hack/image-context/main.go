// Command image-context lists, or copies, the files of a Docker build context: the files that
// `docker build` (BuildKit) sends for a directory with a .dockerignore.
//
// It uses the upstream code, not a model of it: moby/patternmatcher's ignorefile reads
// .dockerignore as the Docker CLI does, and tonistiigi/fsutil's filtered walk (the one
// BuildKit's file sync uses for the local context) applies the patterns, so an excluded
// directory is skipped unless an exception pattern can match inside it.
//
//	image-context CONTEXT            prints every file and symlink sent, one relative path a line
//	image-context -copy DEST CONTEXT copies exactly those into DEST (which must not exist),
//	                                 with their modification times, as COPY keeps them
//
// The list leaves out directories: the files in them imply them.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/patternmatcher/ignorefile"
	"github.com/tonistiigi/fsutil"
)

func main() {
	dest := flag.String("copy", "", "copy the context into this new directory instead of listing it")
	flag.Parse()
	if flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: image-context [-copy DEST] CONTEXT")
		os.Exit(2)
	}
	if err := run(flag.Arg(0), *dest); err != nil {
		fmt.Fprintln(os.Stderr, "image-context:", err)
		os.Exit(1)
	}
}

func run(root, dest string) error {
	excludes, err := patterns(root)
	if err != nil {
		return err
	}
	if dest != "" {
		if err := os.Mkdir(dest, 0o755); err != nil {
			return err
		}
	}
	opt := &fsutil.FilterOpt{ExcludePatterns: excludes}
	return fsutil.WalkDir(context.Background(), root, opt, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if dest == "" {
			if !entry.IsDir() {
				fmt.Println(filepath.ToSlash(path))
			}
			return nil
		}
		return copyEntry(filepath.Join(root, path), filepath.Join(dest, path), entry)
	})
}

// patterns reads CONTEXT/.dockerignore as the Docker CLI does; no file means no patterns.
func patterns(root string) ([]string, error) {
	file, err := os.Open(filepath.Join(root, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	defer file.Close()
	excludes, err := ignorefile.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file.Name(), err)
	}
	return excludes, nil
}

// copyEntry copies one walked entry. The walk visits a directory before what it holds, so the
// parent of every entry exists already.
func copyEntry(from, to string, entry fs.DirEntry) error {
	info, err := entry.Info()
	if err != nil {
		return err
	}
	switch {
	case entry.IsDir():
		return os.Mkdir(to, info.Mode().Perm()|0o700)
	case info.Mode()&fs.ModeSymlink != 0:
		target, err := os.Readlink(from)
		if err != nil {
			return err
		}
		return os.Symlink(target, to)
	case info.Mode().IsRegular():
		if err := copyFile(from, to, info.Mode().Perm()); err != nil {
			return err
		}
		// Kept so that Cargo, which compares modification times, finds an unchanged copy fresh.
		return os.Chtimes(to, info.ModTime(), info.ModTime())
	default:
		return fmt.Errorf("%s: neither a file, a directory nor a symlink", from)
	}
}

func copyFile(from, to string, mode fs.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
