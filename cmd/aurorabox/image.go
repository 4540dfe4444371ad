package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aurorabox/aurorabox/images"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
)

func imageCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Manage the container images tasks can run in (pull, load, ls, rm), without a Docker daemon",
		Long: `The appliance's image store at <data-dir>/images: images pulled from a Docker or
OCI registry (credentials from ~/.docker/config.json, as Docker does) or loaded
from a "docker save" archive or an OCI image layout. Tasks with
Docker(image=...) or Mesos(image=DockerImage(...)) run in them.
Exit status: 0 done, 1 failed.`,
	}
	var insecure []string
	pull := &cobra.Command{
		Use:   "pull IMAGE...",
		Short: "Pull images from their registries (only the layers the store lacks)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, refs []string) error {
			st, err := openImageStore(cmd, insecure)
			if err != nil {
				return err
			}
			for _, ref := range refs {
				bar := newProgressBar(cmd.ErrOrStderr(), "pull")
				img, err := st.Pull(cmd.Context(), ref, bar.update)
				bar.done()
				if err != nil {
					return &exitError{1, err}
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s: %s\n", ref, img.ID)
			}
			return nil
		},
	}
	pull.Flags().StringSliceVar(&insecure, "insecure-registry", nil, "registry (host:port) that may be reached over plain HTTP (loopback registries always may)")
	var tag string
	load := &cobra.Command{
		Use:   "load FILE|DIR",
		Short: "Load the images of a `docker save` archive (FILE) or an OCI image layout (DIR)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, err := openImageStore(cmd, nil)
			if err != nil {
				return err
			}
			bar := newProgressBar(cmd.ErrOrStderr(), "load")
			imgs, err := st.Load(cmd.Context(), args[0], tag, bar.update)
			bar.done()
			if err != nil {
				return &exitError{1, err}
			}
			for _, img := range imgs {
				names := strings.Join(img.Names, ", ")
				if names == "" {
					names = "<none>"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "loaded %s: %s\n", names, img.ID)
			}
			return nil
		},
	}
	load.Flags().StringVar(&tag, "tag", "", "name (repository:tag) for the loaded image")
	ls := &cobra.Command{
		Use:   "ls",
		Short: "List the images in the store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openImageStore(cmd, nil)
			if err != nil {
				return err
			}
			imgs, err := st.List()
			if err != nil {
				return &exitError{1, err}
			}
			writeImageList(cmd.OutOrStdout(), imgs, time.Now())
			return nil
		},
	}
	rm := &cobra.Command{
		Use:   "rm IMAGE...",
		Short: "Remove images (a name removes that name; an ID the image); layers go once unused",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, refs []string) error {
			st, err := openImageStore(cmd, nil)
			if err != nil {
				return err
			}
			var errs []error
			for _, ref := range refs {
				if err := st.Remove(cmd.Context(), ref); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", ref)
			}
			if len(errs) > 0 {
				return &exitError{1, errors.Join(errs...)}
			}
			return nil
		},
	}
	cmd.AddCommand(pull, load, ls, rm)
	return cmd
}

func openImageStore(cmd *cobra.Command, insecure []string) (*images.Store, error) {
	cfg, err := loadConfig(cmd)
	if err != nil {
		return nil, err
	}
	st, err := images.Open(cfg.Path("images"), images.Options{Logger: newLogger(), InsecureRegistries: insecure})
	if err != nil {
		return nil, &exitError{1, err}
	}
	return st, nil
}

// writeImageList prints ls's table: repository, tag, short ID, size, created.
func writeImageList(w io.Writer, imgs []images.Image, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tSIZE\tCREATED")
	for _, img := range imgs {
		id := strings.TrimPrefix(img.ID, "sha256:")
		if len(id) > 12 {
			id = id[:12]
		}
		created := "-"
		if !img.Created.IsZero() {
			created = ago(now.Sub(img.Created)) + " ago"
		}
		names := img.Names
		if len(names) == 0 {
			names = []string{"<none>:<none>"}
		}
		for _, n := range names {
			repo, tag := splitName(n)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", repo, tag, id, humanBytes(img.Size), created)
		}
	}
	tw.Flush()
}

// splitName splits a stored name into repository and tag, showing Docker
// Hub's repositories as Docker does (busybox, not
// index.docker.io/library/busybox); a name by digest has no tag.
func splitName(n string) (repo, tag string) {
	repo, tag = n, "<none>"
	if i := strings.Index(n, "@"); i >= 0 {
		repo = n[:i]
	} else if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") {
		repo, tag = n[:i], n[i+1:]
	}
	for _, p := range []string{"index.docker.io/library/", "index.docker.io/"} {
		if r, ok := strings.CutPrefix(repo, p); ok {
			return r, tag
		}
	}
	return repo, tag
}

func ago(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f, u := float64(n), "KMGTPE"
	i := -1
	for f >= unit && i < len(u)-1 {
		f /= unit
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, u[i])
}

// progressBar draws pull/load progress on a terminal (one line, redrawn),
// or prints a plain line per finished layer otherwise.
type progressBar struct {
	w     io.Writer
	verb  string
	tty   bool
	last  images.Progress
	shown bool
	line  string
}

func newProgressBar(w io.Writer, verb string) *progressBar {
	tty := false
	if f, ok := w.(*os.File); ok {
		_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
		tty = err == nil
	}
	return &progressBar{w: w, verb: verb, tty: tty}
}

func (b *progressBar) update(p images.Progress) {
	prev := b.last
	b.last = p
	if !b.tty {
		if p.LayersDone > prev.LayersDone || !b.shown {
			b.shown = true
			fmt.Fprintf(b.w, "%s %s: %d/%d layers, %s\n", b.verb, p.Ref, p.LayersDone, p.LayersTotal, b.bytes(p))
		}
		return
	}
	b.shown = true
	const width = 30
	frac := 0.0
	switch {
	case p.TotalBytes > 0:
		frac = float64(p.Bytes) / float64(p.TotalBytes)
	case p.LayersTotal > 0:
		frac = float64(p.LayersDone) / float64(p.LayersTotal)
	}
	if p.LayersTotal > 0 && p.LayersDone == p.LayersTotal {
		frac = 1
	}
	fill := min(int(frac*width), width)
	line := fmt.Sprintf("%s %s [%s%s] %d/%d layers %s", b.verb, p.Ref,
		strings.Repeat("=", fill), strings.Repeat(" ", width-fill), p.LayersDone, p.LayersTotal, b.bytes(p))
	if line != b.line { // redraw only what changed, not on every read
		b.line = line
		fmt.Fprint(b.w, "\r\x1b[K"+line)
	}
}

func (b *progressBar) bytes(p images.Progress) string {
	if p.TotalBytes > 0 {
		return humanBytes(p.Bytes) + "/" + humanBytes(p.TotalBytes)
	}
	return humanBytes(p.Bytes)
}

func (b *progressBar) done() {
	if b.tty && b.shown {
		fmt.Fprintln(b.w)
	}
}
