package apiclient

import (
	"context"
	"net/url"
	"strconv"
)

// Names of the inventory actions (EXTENSIONS.md).
const (
	ActionImportInstances = "FrontdeskImportInstances"
	ActionExportInstances = "FrontdeskExportInstances"
)

// ImportLine is one run-instances JSON object and its line in the input,
// which the control plane names when it refuses it.
type ImportLine struct {
	Line int
	JSON string
}

// Imported is one instance an import launched, with the line it came from.
type Imported struct {
	Line       int    `xml:"line"`
	InstanceID string `xml:"instanceId"`
}

// ImportInstances launches lines in one store transaction: every instance,
// or (on an error, an *APIError whose message starts with "line N: ") none.
// It is sent once: a retried import would launch twice.
func (c *Client) ImportInstances(ctx context.Context, lines []ImportLine) ([]Imported, error) {
	p := url.Values{}
	for i, l := range lines {
		n := strconv.Itoa(i + 1)
		p.Set("Instance."+n+".Json", l.JSON)
		p.Set("Instance."+n+".Line", strconv.Itoa(l.Line))
	}
	var a struct {
		Items []Imported `xml:"instancesSet>item"`
	}
	if err := c.Call(ctx, ActionImportInstances, p, &a, false); err != nil {
		return nil, err
	}
	return a.Items, nil
}

// ExportInstances calls fn with every live instance as a run-instances JSON
// line, in instance id order, a page at a time.
func (c *Client) ExportInstances(ctx context.Context, fn func(line string) error) error {
	token := ""
	for {
		p := url.Values{}
		if token != "" {
			p.Set("NextToken", token)
		}
		var a struct {
			Lines     []string `xml:"lineSet>item"`
			NextToken string   `xml:"nextToken"`
		}
		if err := c.Call(ctx, ActionExportInstances, p, &a, true); err != nil {
			return err
		}
		for _, l := range a.Lines {
			if err := fn(l); err != nil {
				return err
			}
		}
		if a.NextToken == "" {
			return nil
		}
		token = a.NextToken
	}
}
