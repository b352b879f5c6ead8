package bayeux

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// differentialInputs are response bodies on the edges of what decodeFast
// accepts: each must decode exactly as encoding/json decodes it.
var differentialInputs = []string{
	``, ` `, `[`, `]`, `{`, `[]`, ` [ ] `, `[ ]x`, `[]]`, `{}`, `[{}]`, `[{},]`, `[,]`, `null`, `[null]`, `"x"`, `1`,
	`[{"channel":"/a"}]`, `{"channel":"/a"}`, `{"channel":"/a"} `, `{"channel":"/a"}{}`, `[{"channel":"/a"}] x`,
	`[{"channel":"/a"},{"channel":"/b"}]`, `[{"channel":"/a"} , {"channel":"/b"} ]`, "\t[\n{\r\"channel\" : \"/a\" }\n]\n",
	`[{"channel":"/a",}]`, `[{"channel":"/a"},]`, `[{"channel":"/a" "id":"1"}]`, `[{"channel" "/a"}]`, `[{channel:"/a"}]`,
	`[{"channel":""}]`, `[{"channel":null}]`, `[{"channel":null,"channel":"/a"}]`, `[{"channel":"/a","channel":"/b"}]`,
	`[{"channel":5}]`, `[{"channel":true}]`, `[{"channel":["/a"]}]`, `[{"channel":{"a":1}}]`,
	`[{"Channel":"/a"}]`, `[{"CHANNEL":"/a"}]`, `[{"channel":"/a","Channel":"/b"}]`, `[{"channel":"/a","DATA":{"x":1}}]`,
	`[{"\u0063hannel":"/a"}]`, `[{"channel":"\/a"}]`, `[{"channel":"/a\u00e9"}]`, `[{"channel":"/a\n"}]`,
	"[{\"channel\":\"/a\xff\"}]", "[{\"channel\":\"/a\xc3\xa9\"}]", "[{\"channel\":\"/a\x01\"}]", "[{\"channel\":\"/a\",\"data\":\"\xff\xfe\"}]",
	"[{\"channel\":\"/a\",\"\xff\":1}]", "[{\"channel\":\"/a\",\"\u017fuccessful\":true}]", "[{\"channel\":\"/a\",\"ſuccessful\":true}]",
	"[{\"channel\":\"/a\",\"clientId\":\"\u212a\"}]", "\u00a0[{\"channel\":\"/a\"}]\u0085",
	`[{"channel":"/a","id":"1"}]`, `[{"channel":"/a","id":1}]`, `[{"channel":"/a","id":-1.5e3}]`, `[{"channel":"/a","id":null}]`,
	`[{"channel":"/a","id":true}]`, `[{"channel":"/a","id":{}}]`, `[{"channel":"/a","id":[1]}]`, `[{"channel":"/a","id":"\u0031"}]`,
	`[{"channel":"/a","id":01}]`, `[{"channel":"/a","id":1.}]`, `[{"channel":"/a","id":.5}]`, `[{"channel":"/a","id":1e}]`, `[{"channel":"/a","id":-}]`,
	`[{"channel":"/a","id":"1","id":"2"}]`, `[{"channel":"/a","id":1e400}]`, `[{"channel":"/a","id":+1}]`,
	`[{"channel":"/a","successful":true}]`, `[{"channel":"/a","successful":false}]`, `[{"channel":"/a","successful":null}]`,
	`[{"channel":"/a","successful":"true"}]`, `[{"channel":"/a","successful":1}]`, `[{"channel":"/a","successful":tru}]`, `[{"channel":"/a","successful":truex}]`,
	`[{"channel":"/a","supportedConnectionTypes":[]}]`, `[{"channel":"/a","supportedConnectionTypes":null}]`,
	`[{"channel":"/a","supportedConnectionTypes":["long-polling","callback-polling"]}]`, `[{"channel":"/a","supportedConnectionTypes":[null]}]`,
	`[{"channel":"/a","supportedConnectionTypes":["a",]}]`, `[{"channel":"/a","supportedConnectionTypes":"long-polling"}]`,
	`[{"channel":"/a","supportedConnectionTypes":["a"],"supportedConnectionTypes":["b","c"]}]`,
	`[{"channel":"/a","version":"1.0","minimumVersion":"1.0","connectionType":"long-polling","clientId":"c","error":"403::x"}]`,
	`[{"channel":"/a","subscription":"/b"}]`, `[{"channel":"/a","subscription":["/b","/c"]}]`, `[{"channel":"/a","subscription":null}]`,
	`[{"channel":"/a","ext":{"replay":true,"payload.format":true}}]`, `[{"channel":"/a","ext":null}]`, `[{"channel":"/a","ext":{"a":}}]`,
	`[{"channel":"/a","data":null}]`, `[{"channel":"/a","data":{}}]`, `[{"channel":"/a","data":[]}]`, `[{"channel":"/a","data":"s"}]`,
	`[{"channel":"/a","data":{"event":{"replayId":1}},"data":{"event":{"replayId":2}}}]`,
	`[{"channel":"/a","data":{"a":"\u12"}}]`, `[{"channel":"/a","data":{"a":"\u12g4"}}]`, `[{"channel":"/a","data":{"a":"\x"}}]`,
	`[{"channel":"/a","data":{"a":"\"\\\/\b\f\n\r\t\u00E9"}}]`, `[{"channel":"/a","data":{"a" 1}}]`, `[{"channel":"/a","data":{1:1}}]`,
	`[{"channel":"/a","data":{"a":1,}}]`, `[{"channel":"/a","data":[1,]}]`, `[{"channel":"/a","data":[1 2]}]`, `[{"channel":"/a","data":{"a":nul}}]`,
	`[{"channel":"/a","data":{"a":-0.0e+0,"b":-0,"c":1E-2,"d":123456789012345678901234567890}}]`, `[{"channel":"/a","data":{"a":00}}]`,
	`[{"channel":"/a","data":{"a":NaN}}]`, `[{"channel":"/a","data":{"a":Infinity}}]`, `[{"channel":"/a","data":{"a":0x10}}]`,
	`[{"channel":"/a","data":{"a":"b"}`, `[{"channel":"/a","data":{"a":"b`, `[{"channel":"/a","data":{"a":"b\`,
	`[{"channel":"/a","advice":{"reconnect":"retry","interval":0,"timeout":110000}}]`, `[{"channel":"/a","advice":null}]`,
	`[{"channel":"/a","advice":{}}]`, `[{"channel":"/a","advice":{"interval":null}}]`, `[{"channel":"/a","advice":{"interval":"1"}}]`,
	`[{"channel":"/a","advice":{"interval":1e400}}]`, `[{"channel":"/a","advice":{"interval":1e-400}}]`, `[{"channel":"/a","advice":{"timeout":-0}}]`,
	`[{"channel":"/a","advice":{"interval":1,"interval":2}}]`, `[{"channel":"/a","advice":{"interval":1},"advice":{"timeout":2}}]`,
	`[{"channel":"/a","advice":{"Interval":1}}]`, `[{"channel":"/a","advice":{"multiple-clients":true,"hosts":["x"],"x":{"y":[]}}}]`,
	`[{"channel":"/a","advice":{"multiple-clients":1}}]`, `[{"channel":"/a","advice":[]}]`, `[{"channel":"/a","advice":"retry"}]`,
	`[{"channel":"/a","advice":{"reconnect":null}}]`, `[{"channel":"/a","advice":{"reconnect":"\u0072etry"}}]`,
	`[{"channel":"/a","unknown":{"deep":[[[{"x":null}]]]},"other":[true,false,null,"s",-1.5]}]`,
	`[{"channel":"/a","clientId":"c","clientId":"d"}]`, `[{"channel":"/a"},null]`, `[{"channel":"/a"},1]`, `[[{"channel":"/a"}]]`,
	`[{"channel":"/a","data":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}]`,
	`[{"channel":"/a","data":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}]`,
	`[{"channel":"/a","data":` + strings.Repeat(`{"a":`, 513) + `1` + strings.Repeat("}", 513) + `}]`,
}

// requireSameAsStd checks that decodeResponse gives exactly what
// encoding/json gives for body: the same messages, or the same error.
func requireSameAsStd(t *testing.T, body []byte) {
	t.Helper()
	want, wantErr := decodeStd(bytes.Clone(body))
	got, gotErr := decodeResponse(bytes.Clone(body))
	if wantErr != nil {
		require.Error(t, gotErr, "encoding/json refuses %q", body)
		require.Equal(t, wantErr.Error(), gotErr.Error())
		require.ErrorIs(t, gotErr, errMalformed)
		return
	}
	require.NoError(t, gotErr, "encoding/json accepts %q", body)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("decodeResponse(%q) differs from encoding/json (-want +got):\n%s", body, diff)
	}
}

// TestDecodeResponseMatchesStd: the single-pass decoder decodes the fuzz
// seeds and hostile inputs exactly as encoding/json does.
func TestDecodeResponseMatchesStd(t *testing.T) {
	t.Parallel()
	inputs := append([]string{string(cdcBatch(3))}, differentialInputs...)
	for _, in := range inputs {
		requireSameAsStd(t, []byte(in))
	}
}

// TestDecodeFastTakesServerShapes: what Salesforce and CometD send goes
// through the fast path, and event data aliases the body instead of being
// copied (the body is never reused).
func TestDecodeFastTakesServerShapes(t *testing.T) {
	t.Parallel()
	for _, in := range []string{
		string(cdcBatch(5)),
		`[{"ext":{"replay":true,"payload.format":true},"minimumVersion":"1.0","clientId":"41kd","supportedConnectionTypes":["long-polling"],"channel":"/meta/handshake","id":"1","version":"1.0","successful":true}]`,
		`[{"clientId":"x","channel":"/meta/subscribe","id":"3","subscription":"/data/AccountChangeEvent","successful":true}]`,
		`[{"channel":"/meta/connect","successful":false,"error":"403::Unknown client","advice":{"reconnect":"handshake","interval":500},"id":7}]`,
		`{"channel":"/meta/disconnect","successful":true}`,
	} {
		body := []byte(in)
		msgs, ok := decodeFast(body)
		require.True(t, ok, "fast path refused %s", in)
		for _, m := range msgs {
			if len(m.Data) > 0 {
				require.Same(t, &body[bytes.Index(body, m.Data)], &m.Data[0], "data is copied")
				require.Equal(t, len(m.Data), cap(m.Data), "data capacity reaches into the body")
			}
		}
	}
}
