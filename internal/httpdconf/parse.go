// Package httpdconf reads an Apache httpd configuration tree the way httpd
// does when it starts: from the main file through Include and
// IncludeOptional, with <IfModule>, <IfDefine> and <IfVersion> decided
// against the modules the tree loads and the names it defines, Define and
// ${VAR} (with Debian's envvars file), line continuations, quoting and
// comments. What it hands back is the tree of directives that httpd would
// act on, each with the file and line it came from, so that the importer
// (config/httpd) can say where every line of its output came from.
//
// It interprets nothing else: which directives mean what is the importer's
// business. It never runs httpd and never reads a file that the tree does
// not name.
package httpdconf

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// Directive is one directive or section as httpd would see it after
// conditionals and includes are resolved.
type Directive struct {
	Name     string       // as written, without "<" for sections
	Args     []string     // unquoted, variables expanded
	File     string       // the file it was read from
	Line     int          // its first line in File
	Section  bool         // a <Name ...> ... </Name> block
	Children []*Directive // a section's contents
}

// Pos returns "file:line".
func (d *Directive) Pos() string { return fmt.Sprintf("%s:%d", d.File, d.Line) }

// Is reports whether the directive's name is name, ignoring case as httpd
// does.
func (d *Directive) Is(name string) bool { return strings.EqualFold(d.Name, name) }

// Error is a problem in the tree, at a file and line.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return e.File + ": " + e.Msg
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
}

// DefaultVersion is the httpd version <IfVersion> is decided against when
// Options.Version is empty: a current 2.4.
const DefaultVersion = "2.4.62"

// builtinModules are compiled into Debian's and most distributions'
// apache2 binary (apache2 -l), so <IfModule> finds them without LoadModule.
var builtinModules = []string{"core", "so", "watchdog", "http_core", "log_config", "logio", "version", "unixd"}

// Options adjust how the tree is read.
type Options struct {
	// ServerRoot is where relative paths start until the tree sets its
	// own ServerRoot. Default: the main file's directory.
	ServerRoot string
	// Defines are names defined as with httpd -D NAME.
	Defines []string
	// Env holds variables for ${VAR} besides the tree's Define lines and
	// its envvars file. Nil: none (the process environment is not read, so
	// that an import is the same wherever it runs).
	Env map[string]string
	// Version is the httpd version for <IfVersion>; default DefaultVersion.
	Version string
	// NoEnvvars skips reading the envvars file next to the main file.
	NoEnvvars bool
}

// Tree is a parsed configuration.
type Tree struct {
	Main       string       // the main file
	ServerRoot string       // in effect at the end
	Directives []*Directive // the top level, in order
	Modules    []string     // loaded modules by name, like proxy_module
	Vars       map[string]string
	// Skipped are the conditional sections that were false, in the order
	// read: what httpd skips (an <IfModule> of a module not loaded, or of
	// one that does not exist, is false, not an error).
	Skipped []*Directive
}

// maxDepth bounds Include nesting, as httpd does, so a file that includes
// itself is an error instead of a hang.
const maxDepth = 128

type parser struct {
	opts       Options
	serverRoot string
	vars       map[string]string
	defines    map[string]bool
	modules    map[string]bool
	moduleList []string
	version    []int
	skipped    []*Directive
}

// Parse reads the tree whose main file is path.
func Parse(path string, opts Options) (*Tree, error) {
	p := &parser{opts: opts, vars: map[string]string{}, defines: map[string]bool{}, modules: map[string]bool{}}
	for k, v := range opts.Env {
		p.vars[k] = v
	}
	for _, d := range opts.Defines {
		p.defines[d] = true
	}
	for _, m := range builtinModules {
		p.modules[m+"_module"] = true
	}
	v := opts.Version
	if v == "" {
		v = DefaultVersion
	}
	p.version = versionParts(v)
	p.serverRoot = opts.ServerRoot
	if p.serverRoot == "" {
		p.serverRoot = filepath.Dir(path)
	}
	// httpd makes ServerRoot absolute; the paths the import writes must
	// not depend on the folder webtier runs in.
	if abs, err := filepath.Abs(p.serverRoot); err == nil {
		p.serverRoot = abs
	}
	if !opts.NoEnvvars {
		if err := p.readEnvvars(filepath.Join(filepath.Dir(path), "envvars")); err != nil {
			return nil, err
		}
	}
	ds, err := p.file(path, 0)
	if err != nil {
		return nil, err
	}
	return &Tree{Main: path, ServerRoot: p.serverRoot, Directives: ds, Modules: p.moduleList, Vars: p.vars, Skipped: p.skipped}, nil
}

// readEnvvars reads the assignments of Debian's /etc/apache2/envvars (a
// shell file apache2ctl sources): NAME=value and export NAME=value at the
// top level, with $VAR and ${VAR} expanded; if blocks are skipped, which
// leaves Debian's SUFFIX empty as it is for /etc/apache2. A missing file
// is no error: only Debian has one.
func (p *parser) readEnvvars(path string) error {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	if _, ok := p.vars["APACHE_CONFDIR"]; !ok {
		p.vars["APACHE_CONFDIR"] = filepath.Dir(path)
	}
	assign := regexp.MustCompile(`^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)
	shellVar := regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)
	depth := 0
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "if "):
			depth++
			continue
		case line == "fi" || strings.HasPrefix(line, "fi "):
			depth--
			continue
		}
		m := assign.FindStringSubmatch(line)
		if depth > 0 || m == nil {
			continue
		}
		v := strings.Trim(m[2], `"'`)
		v = shellVar.ReplaceAllStringFunc(v, func(s string) string {
			sm := shellVar.FindStringSubmatch(s)
			return p.vars[sm[1]+sm[2]]
		})
		p.vars[m[1]] = v
	}
	return nil
}

// line is one logical line: continuations joined.
type line struct {
	text string
	num  int
}

func readLines(data []byte) []line {
	var out []line
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var cur strings.Builder
	start, n := 0, 0
	for sc.Scan() {
		n++
		s := strings.TrimRight(sc.Text(), " \t\r")
		if cur.Len() == 0 {
			start = n
		}
		if strings.HasSuffix(s, `\`) {
			cur.WriteString(s[:len(s)-1])
			continue
		}
		cur.WriteString(s)
		out = append(out, line{cur.String(), start})
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, line{cur.String(), start})
	}
	return out
}

// file reads one file (or, for a directory, every file in it) and returns
// its directives.
func (p *parser) file(path string, depth int) ([]*Directive, error) {
	if depth > maxDepth {
		return nil, &Error{File: path, Msg: fmt.Sprintf("included more than %d levels deep; does a file include itself?", maxDepth)}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &Error{File: path, Msg: fmt.Sprintf("cannot read: %v", err)}
	}
	lines := readLines(data)
	i := 0
	ds, end, err := p.block(path, lines, &i, "", depth, true)
	if err != nil {
		return nil, err
	}
	if end != nil {
		return nil, &Error{File: path, Line: end.num, Msg: fmt.Sprintf("%s without a matching opening section", strings.TrimSpace(end.text))}
	}
	return ds, nil
}

// block reads lines until the closing tag of section (or the end of the
// file when section is ""). It returns the directives httpd would keep and,
// at the top level, a stray closing tag if one ends the file early. When
// active is false (inside a conditional that is false) it only checks that
// the sections nest, as httpd does, and acts on nothing.
func (p *parser) block(path string, lines []line, i *int, section string, depth int, active bool) ([]*Directive, *line, error) {
	var out []*Directive
	openLine := 0
	if *i > 0 {
		openLine = lines[*i-1].num
	}
	for *i < len(lines) {
		l := lines[*i]
		*i++
		text := strings.TrimSpace(l.text)
		if text == "" || text[0] == '#' {
			continue
		}
		if strings.HasPrefix(text, "</") {
			name := strings.TrimSuffix(strings.TrimSpace(text[2:]), ">")
			if section == "" {
				return out, &l, nil
			}
			if !strings.EqualFold(name, section) {
				return nil, nil, &Error{File: path, Line: l.num, Msg: fmt.Sprintf("</%s> closes <%s> (line %d); close the sections in the order they were opened", name, section, openLine)}
			}
			return out, nil, nil
		}
		if text[0] == '<' {
			if !strings.HasSuffix(text, ">") {
				return nil, nil, &Error{File: path, Line: l.num, Msg: fmt.Sprintf("section %q lacks its closing \">\"", text)}
			}
			name, rest, _ := strings.Cut(strings.TrimSuffix(text[1:], ">"), " ")
			name, _, _ = strings.Cut(name, "\t")
			var args []string
			keep, cond := active, false
			if active {
				var err error
				if args, err = p.words(path, l.num, rest); err != nil {
					return nil, nil, err
				}
				if keep, cond, err = p.condition(path, l.num, name, args); err != nil {
					return nil, nil, err
				}
			}
			children, _, err := p.block(path, lines, i, name, depth, keep)
			if err != nil {
				return nil, nil, err
			}
			if !active {
				continue
			}
			if cond {
				if !keep {
					p.skipped = append(p.skipped, &Directive{Name: name, Args: args, File: path, Line: l.num, Section: true})
				}
				out = append(out, children...)
				continue
			}
			out = append(out, &Directive{Name: name, Args: args, File: path, Line: l.num, Section: true, Children: children})
			continue
		}
		if !active {
			continue
		}
		name, rest, _ := strings.Cut(text, " ")
		if j := strings.IndexByte(name, '\t'); j >= 0 {
			name, rest = name[:j], name[j+1:]+" "+rest
		}
		args, err := p.words(path, l.num, rest)
		if err != nil {
			return nil, nil, err
		}
		d := &Directive{Name: name, Args: args, File: path, Line: l.num}
		more, err := p.readTime(d, depth)
		if err != nil {
			return nil, nil, err
		}
		if more != nil {
			out = append(out, more...)
			continue
		}
		out = append(out, d)
	}
	if section != "" {
		// Reached the end of the file inside a section.
		return out, nil, &Error{File: path, Line: openLine, Msg: fmt.Sprintf("<%s> is never closed; add </%s> at the end of the section", section, section)}
	}
	return out, nil, nil
}
