package httpdconf

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// varRef is ${NAME} as httpd expands it in every line it reads.
var varRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// words expands ${VAR} and splits rest into arguments as httpd's
// ap_getword_conf does: runs of blanks separate them, and a word may be
// quoted with " or ', inside which a backslash escapes the quote. A name
// that is not defined stays as written, as httpd leaves it (with a warning).
func (p *parser) words(path string, num int, rest string) ([]string, error) {
	rest = varRef.ReplaceAllStringFunc(rest, func(s string) string {
		if v, ok := p.vars[s[2:len(s)-1]]; ok {
			return v
		}
		return s
	})
	var out []string
	for {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			return out, nil
		}
		q := rest[0]
		if q != '"' && q != '\'' {
			end := strings.IndexAny(rest, " \t")
			if end < 0 {
				end = len(rest)
			}
			out = append(out, rest[:end])
			rest = rest[end:]
			continue
		}
		var b strings.Builder
		j := 1
		for ; j < len(rest) && rest[j] != q; j++ {
			if rest[j] == '\\' && j+1 < len(rest) && (rest[j+1] == q || rest[j+1] == '\\') {
				j++
			}
			b.WriteByte(rest[j])
		}
		if j >= len(rest) {
			return nil, &Error{File: path, Line: num, Msg: fmt.Sprintf("a %c quote is not closed; close it on the same line (or continue the line with \\)", q)}
		}
		out = append(out, b.String())
		rest = rest[j+1:]
	}
}

// condition decides a conditional section: cond is whether name is one,
// keep whether its contents count.
func (p *parser) condition(path string, num int, name string, args []string) (keep, cond bool, err error) {
	switch strings.ToLower(name) {
	case "ifmodule", "ifdefine", "iffile", "ifversion", "ifdirective", "ifsection":
	default:
		return true, false, nil
	}
	if len(args) == 0 {
		return false, true, &Error{File: path, Line: num, Msg: fmt.Sprintf("<%s> needs an argument", name)}
	}
	arg, neg := args[0], false
	if strings.HasPrefix(arg, "!") {
		arg, neg = arg[1:], true
	}
	switch strings.ToLower(name) {
	case "ifmodule":
		// A module that is not loaded (or unknown) is false, not an error.
		keep = p.modules[ModuleName(arg)]
	case "ifdefine":
		keep = p.defines[arg]
	case "iffile":
		if !filepath.IsAbs(arg) {
			arg = filepath.Join(p.serverRoot, arg)
		}
		_, statErr := os.Stat(arg)
		keep = statErr == nil
	case "ifversion":
		keep, err = p.versionMatches(path, num, args)
		neg = false // versionMatches reads its own "!"
	default: // IfDirective, IfSection: every directive the importer reads exists
		keep = true
	}
	return keep != neg, true, err
}

// ModuleName returns the name LoadModule gives a module for either form
// <IfModule> accepts: mod_ssl.c (the source file) or ssl_module.
func ModuleName(s string) string {
	if strings.HasSuffix(s, ".c") {
		return strings.TrimPrefix(strings.TrimSuffix(s, ".c"), "mod_") + "_module"
	}
	return s
}

// versionMatches decides <IfVersion [[!]op] version>.
func (p *parser) versionMatches(path string, num int, args []string) (bool, error) {
	op, v := "=", args[0]
	if len(args) > 1 {
		op, v = args[0], args[1]
	}
	neg := strings.HasPrefix(op, "!")
	op = strings.TrimPrefix(op, "!")
	if strings.HasPrefix(v, "/") && strings.HasSuffix(v, "/") && len(v) > 1 {
		op, v = "~", v[1:len(v)-1]
	}
	have := fmt.Sprintf("%d.%d.%d", p.version[0], p.version[1], p.version[2])
	var ok bool
	switch op {
	case "~":
		re, err := regexp.Compile(v)
		if err != nil {
			return false, &Error{File: path, Line: num, Msg: fmt.Sprintf("<IfVersion> regular expression %q: %v", v, err)}
		}
		ok = re.MatchString(have)
	case "=", "==", "<", "<=", ">", ">=":
		c := compareVersions(p.version, versionParts(v))
		ok = map[string]bool{"=": c == 0, "==": c == 0, "<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0}[op]
	default:
		return false, &Error{File: path, Line: num, Msg: fmt.Sprintf("<IfVersion> operator %q is not one of = == < <= > >= ~", op)}
	}
	return ok != neg, nil
}

func versionParts(s string) []int {
	out := []int{0, 0, 0}
	for i, f := range strings.SplitN(s, ".", 3) {
		n, _ := strconv.Atoi(f)
		out[i] = n
	}
	return out
}

func compareVersions(a, b []int) int {
	for i := range 3 {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// readTime does what httpd does while it reads a directive rather than
// later: ServerRoot, Define, UnDefine, LoadModule, Include. It returns the
// directives that take d's place, or nil to keep d as it is.
func (p *parser) readTime(d *Directive, depth int) ([]*Directive, error) {
	switch strings.ToLower(d.Name) {
	case "serverroot":
		if len(d.Args) == 1 {
			p.serverRoot = d.Args[0]
		}
	case "define":
		if len(d.Args) == 0 {
			return nil, &Error{File: d.File, Line: d.Line, Msg: "Define needs a name"}
		}
		p.defines[d.Args[0]] = true
		if len(d.Args) > 1 {
			p.vars[d.Args[0]] = d.Args[1]
		}
	case "undefine":
		if len(d.Args) > 0 {
			delete(p.defines, d.Args[0])
			delete(p.vars, d.Args[0])
		}
	case "loadmodule":
		if len(d.Args) != 2 {
			return nil, &Error{File: d.File, Line: d.Line, Msg: "LoadModule needs a module name and a file, like LoadModule proxy_module modules/mod_proxy.so"}
		}
		if !p.modules[d.Args[0]] {
			p.modules[d.Args[0]] = true
			p.moduleList = append(p.moduleList, d.Args[0])
		}
	case "include", "includeoptional":
		return p.include(d, depth)
	}
	return nil, nil
}

// include reads the files an Include or IncludeOptional names: a path
// relative to ServerRoot, a glob, or a directory (every file in it). It
// returns d followed by what they hold, so the report can name d too.
func (p *parser) include(d *Directive, depth int) ([]*Directive, error) {
	optional := d.Is("IncludeOptional")
	if len(d.Args) != 1 {
		return nil, &Error{File: d.File, Line: d.Line, Msg: d.Name + " needs one path"}
	}
	pattern := d.Args[0]
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(p.serverRoot, pattern)
	}
	var files []string
	if strings.ContainsAny(pattern, "*?[") {
		m, err := filepath.Glob(pattern)
		if err != nil {
			return nil, &Error{File: d.File, Line: d.Line, Msg: fmt.Sprintf("%s %q: %v", d.Name, d.Args[0], err)}
		}
		if len(m) == 0 && !optional {
			return nil, &Error{File: d.File, Line: d.Line, Msg: fmt.Sprintf("Include %q matches no file (looked for %s); fix the path, or write IncludeOptional if it may match nothing", d.Args[0], pattern)}
		}
		files = m
	} else {
		fi, err := os.Stat(pattern)
		switch {
		case err != nil && optional:
			return []*Directive{d}, nil
		case err != nil:
			return nil, &Error{File: d.File, Line: d.Line, Msg: fmt.Sprintf("Include %q: no such file (looked for %s); fix the path, or write IncludeOptional if it may be absent", d.Args[0], pattern)}
		case fi.IsDir():
			ents, err := os.ReadDir(pattern)
			if err != nil {
				return nil, &Error{File: d.File, Line: d.Line, Msg: fmt.Sprintf("%s %q: %v", d.Name, d.Args[0], err)}
			}
			for _, e := range ents {
				files = append(files, filepath.Join(pattern, e.Name()))
			}
		default:
			files = []string{pattern}
		}
	}
	sort.Strings(files)
	out := []*Directive{d}
	for _, f := range files {
		if fi, err := os.Stat(f); err == nil && fi.IsDir() {
			sub := *d
			sub.Args = []string{f}
			more, err := p.include(&sub, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, more[1:]...)
			continue
		}
		more, err := p.file(f, depth+1)
		if err != nil {
			return nil, err
		}
		out = append(out, more...)
	}
	return out, nil
}
