package slackui

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestWebAPIScopesListEveryMethodCalled reads this package's source: the method names passed
// to slackAPI.call must be exactly the keys of WebAPIScopes, and every call on the Slack client
// (x.c.Method) must go through call, so no Web API use escapes the table the manifest is tested
// against.
func TestWebAPIScopesListEveryMethodCalled(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	called := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		inside := map[*ast.FuncLit]bool{} // the functions handed to call
		ast.Inspect(f, func(n ast.Node) bool {
			ce, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			if sel, ok := ce.Fun.(*ast.SelectorExpr); ok && sel.Sel.Name == "call" && len(ce.Args) == 3 {
				lit, ok := ce.Args[1].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Errorf("%s: call with a method name that is not a string literal", fset.Position(ce.Pos()))
					return true
				}
				m, _ := strconv.Unquote(lit.Value)
				called[m] = true
				if fl, ok := ce.Args[2].(*ast.FuncLit); ok {
					inside[fl] = true
				}
			}
			return true
		})
		// Every x.c.Method(…) must sit inside one of those functions.
		var stack []ast.Node
		ast.Inspect(f, func(n ast.Node) bool {
			if n == nil {
				stack = stack[:len(stack)-1]
				return true
			}
			stack = append(stack, n)
			ce, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := ce.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			if recv, ok := sel.X.(*ast.SelectorExpr); !ok || recv.Sel.Name != "c" {
				return true
			}
			for _, up := range stack {
				if fl, ok := up.(*ast.FuncLit); ok && inside[fl] {
					return true
				}
			}
			t.Errorf("%s: Slack client call %s outside slackAPI.call: add it to the table", fset.Position(ce.Pos()), sel.Sel.Name)
			return true
		})
	}
	var got, want []string
	for m := range called {
		got = append(got, m)
	}
	for m := range WebAPIScopes {
		want = append(want, m)
	}
	sort.Strings(got)
	sort.Strings(want)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("WebAPIScopes keys (-) vs methods the code calls (+):\n%s", d)
	}
	if bs := BotScopes(); len(bs) < 2 || bs[0] == "" {
		t.Errorf("BotScopes() = %v", bs)
	}
}
