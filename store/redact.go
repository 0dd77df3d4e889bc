package store

import (
	"net/url"
	"strings"
)

// Redact returns a URL fit for any output: logs, error messages, document
// ids and record keys, stats, manifests, recipe copies and plans. It is the
// one function every place that turns an input URL into text goes through.
//
// It removes the user info (user:password@), the fragment and every query
// parameter that carries a credential (names compared without regard to
// case):
//   - any name starting with x-amz-, x-goog- or x-oss- (S3, GCS and OSS
//     presigned URLs: credential, date, expiry, signed headers, signature,
//     security token);
//   - signature, sig, token, key, policy, credential, awsaccesskeyid,
//     googleaccessid, key-pair-id, and any name containing token, secret,
//     password, passwd, signature, credential, apikey, api_key or api-key;
//   - where one of those is present (the URL is signed): expires and Azure
//     SAS fields (sv, ss, srt, sp, se, st, spr, sr, si, sdd, ses, skoid,
//     sktid, skt, ske, sks, skv), which change when a URL is signed again.
//
// Other parameters stay, in their order, so the result names the object
// and stays the same when the same object's URL is signed again. A local
// path is returned as it is.
func Redact(p string) string {
	if !IsRemote(p) {
		return p
	}
	u, err := url.Parse(p)
	if err != nil {
		// Unparsable: keep nothing after the path.
		if i := strings.IndexAny(p, "?#"); i >= 0 {
			return p[:i]
		}
		return p
	}
	u.User, u.Fragment, u.RawFragment = nil, "", ""
	u.RawQuery = redactQuery(u.RawQuery)
	u.ForceQuery = false
	return u.String()
}

// redactQuery removes the credential parameters from a raw query string,
// keeping the others as they were written.
func redactQuery(q string) string {
	if q == "" {
		return ""
	}
	parts := strings.Split(q, "&")
	signed := false
	for _, kv := range parts {
		if isCredentialParam(paramName(kv)) {
			signed = true
			break
		}
	}
	kept := parts[:0]
	for _, kv := range parts {
		name := paramName(kv)
		if kv == "" || isCredentialParam(name) || (signed && signedOnlyParams[name]) {
			continue
		}
		kept = append(kept, kv)
	}
	return strings.Join(kept, "&")
}

// paramName is a query parameter's name, unescaped and in lower case.
func paramName(kv string) string {
	name, _, _ := strings.Cut(kv, "=")
	if n, err := url.QueryUnescape(name); err == nil {
		name = n
	}
	return strings.ToLower(strings.TrimSpace(name))
}

var credentialParams = map[string]bool{
	"signature": true, "sig": true, "token": true, "key": true, "policy": true, "credential": true,
	"awsaccesskeyid": true, "googleaccessid": true, "key-pair-id": true, "auth": true, "authorization": true,
	"code": true, "jwt": true, "session": true, "sessionid": true,
}

var credentialPrefixes = []string{"x-amz-", "x-goog-", "x-oss-"}

var credentialParts = []string{"token", "secret", "password", "passwd", "signature", "credential", "apikey", "api_key", "api-key"}

// signedOnlyParams are removed only from a signed URL: alone they are no
// secret, but they change each time the URL is signed.
var signedOnlyParams = map[string]bool{
	"expires": true, "sv": true, "ss": true, "srt": true, "sp": true, "se": true, "st": true, "spr": true,
	"sr": true, "si": true, "sdd": true, "ses": true, "skoid": true, "sktid": true, "skt": true, "ske": true,
	"sks": true, "skv": true,
}

func isCredentialParam(name string) bool {
	if credentialParams[name] {
		return true
	}
	for _, p := range credentialPrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	for _, p := range credentialParts {
		if strings.Contains(name, p) {
			return true
		}
	}
	return false
}

// HasCredentials reports whether a URL carries something Redact removes
// because it is secret: user info or a credential query parameter.
func HasCredentials(p string) bool {
	if !IsRemote(p) {
		return false
	}
	u, err := url.Parse(p)
	if err != nil {
		return strings.ContainsAny(p, "?@")
	}
	if u.User != nil {
		return true
	}
	for _, kv := range strings.Split(u.RawQuery, "&") {
		if isCredentialParam(paramName(kv)) {
			return true
		}
	}
	return false
}
