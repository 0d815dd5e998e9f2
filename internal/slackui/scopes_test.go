package slackui

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// clientMethods names the Web API method behind each slack-go client call the app makes (from
// slack-go's source); a call not listed here fails the test below until it is added.
var clientMethods = map[string][]string{
	"PostMessageContext":         {"chat.postMessage", "response_url"},
	"UpdateMessageContext":       {"chat.update"},
	"PostEphemeralContext":       {"chat.postEphemeral"},
	"GetPermalinkContext":        {"chat.getPermalink"},
	"GetUserGroupMembersContext": {"usergroups.users.list"},
	"GetConversationInfoContext": {"conversations.info"},
	"AuthTestContext":            {"auth.test"},
	"OpenViewContext":            {"views.open"},
}

// TestWebAPIScopesListEveryMethodCalled reads this package's source. Every call on the Slack
// client (x.c.Method(…)) sits in a function that names its Web API method to the error metric
// (a string literal argument of fail or call), that name is the one slack-go calls, and the
// names are exactly the keys of WebAPIScopes: no Web API use escapes the table the Slack app
// manifest is tested against.
func TestWebAPIScopesListEveryMethodCalled(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	named := map[string]bool{}
	clientCalls := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			var names []string
			var calls []*ast.CallExpr
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				ce, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := ce.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if recv, ok := sel.X.(*ast.SelectorExpr); ok && recv.Sel.Name == "c" {
					calls = append(calls, ce)
				}
				if sel.Sel.Name == "fail" || sel.Sel.Name == "call" {
					for _, a := range ce.Args {
						if lit, ok := a.(*ast.BasicLit); ok && lit.Kind == token.STRING {
							m, _ := strconv.Unquote(lit.Value)
							names = append(names, m)
							break
						}
					}
				}
				return true
			})
			for _, ce := range calls {
				clientCalls++
				m := ce.Fun.(*ast.SelectorExpr).Sel.Name
				want, ok := clientMethods[m]
				switch {
				case !ok:
					t.Errorf("%s: Slack client call %s: add it to clientMethods and WebAPIScopes", fset.Position(ce.Pos()), m)
				case !slices.ContainsFunc(want, func(w string) bool { return slices.Contains(names, w) }):
					t.Errorf("%s: %s calls %s but names %v to fail/call, not one of %v", fset.Position(ce.Pos()), fd.Name.Name, m, names, want)
				}
			}
			for _, n := range names {
				named[n] = true
			}
		}
	}
	if clientCalls < len(clientMethods) {
		t.Fatalf("found only %d Slack client calls: is the client still the field c?", clientCalls)
	}
	var got, want []string
	for m := range named {
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
}
