package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/webtier/webtier/config"
	httpdimport "github.com/webtier/webtier/config/httpd"
	"github.com/webtier/webtier/internal/httpdconf"
)

// exitApproximated is import-httpd's exit status under -strict when a
// directive was approximated or left.
const exitApproximated = 3

// importHTTPD is `webtier import-httpd`: it reads an httpd configuration
// tree and writes the webtier config and the report. The config is checked
// with this webtier's own config package before it is written, so that
// what the user gets either loads or comes with the reason it does not.
func importHTTPD(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import-httpd", flag.ContinueOnError)
	out := fs.String("o", "", "write the webtier config to this file (default: stdout)")
	reportPath := fs.String("report", "", "write the report to this file (default: stderr)")
	strict := fs.Bool("strict", false, fmt.Sprintf("exit %d when any directive was approximated or left", exitApproximated))
	var defines defineList
	fs.Var(&defines, "D", "define a name for <IfDefine>, as httpd -D NAME (repeatable)")
	serverRoot := fs.String("server-root", "", "ServerRoot until the config sets one (default: the main file's directory)")
	version := fs.String("httpd-version", httpdconf.DefaultVersion, "the httpd version <IfVersion> is decided for (apache2 -v)")
	if code := parseFlags(fs, args, stdout, stderr); code != proceed {
		return code
	}
	// Flags after the path too (import-httpd apache2.conf -o out.yaml), as
	// users type them.
	paths := fs.Args()
	if len(paths) > 1 {
		if code := parseFlags(fs, paths[1:], stdout, stderr); code != proceed {
			return code
		}
		if fs.NArg() != 0 {
			fmt.Fprintf(stderr, "webtier import-httpd: one httpd config file, not %s and %s\n", paths[0], strings.Join(fs.Args(), " "))
			return 2
		}
		paths = paths[:1]
	}
	if len(paths) != 1 {
		fmt.Fprintln(stderr, "webtier import-httpd: name the main httpd config file, like /etc/apache2/apache2.conf")
		return 2
	}
	path := paths[0]
	tree, err := httpdconf.Parse(path, httpdconf.Options{ServerRoot: *serverRoot, Defines: defines, Version: *version})
	if err != nil {
		fmt.Fprintf(stderr, "webtier import-httpd: %v\n", err)
		return 1
	}
	parse := func(file string, data []byte) error { _, err := config.Parse(file, data); return err }
	res, err := httpdimport.Translate(tree, httpdimport.Options{Has: httpdimport.Probe(parse), Source: path})
	if err != nil {
		fmt.Fprintf(stderr, "webtier import-httpd: %v\n", err)
		return 1
	}
	rep := stderr
	if *reportPath != "" {
		f, err := os.Create(*reportPath)
		if err != nil {
			fmt.Fprintf(stderr, "webtier import-httpd: %v\n", err)
			return 1
		}
		defer f.Close()
		rep = f
	}
	if _, err := res.Report.WriteTo(rep); err != nil {
		fmt.Fprintf(stderr, "webtier import-httpd: writing the report: %v\n", err)
		return 1
	}
	name := "webtier.yaml"
	if *out != "" {
		name = *out
		if err := os.WriteFile(*out, res.YAML, 0o644); err != nil {
			fmt.Fprintf(stderr, "webtier import-httpd: %v\n", err)
			return 1
		}
	} else if _, err := stdout.Write(res.YAML); err != nil {
		return 1
	}
	if err := parse(name, res.YAML); err != nil {
		fmt.Fprintf(stderr, "webtier import-httpd: the config written does not load yet; complete it by hand (the report says what was left):\n%v\n", err)
		return 1
	}
	if *strict && !res.Report.Clean() {
		fmt.Fprintf(stderr, "webtier import-httpd: %d directives approximated, %d left (-strict)\n",
			res.Report.Count(httpdimport.Approx), res.Report.Count(httpdimport.Left))
		return exitApproximated
	}
	return 0
}

// defineList collects repeated -D flags.
type defineList []string

func (d *defineList) String() string     { return strings.Join(*d, ",") }
func (d *defineList) Set(s string) error { *d = append(*d, s); return nil }
