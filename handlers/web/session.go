package web

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/handlers/request"
	"github.com/piperun/piperun/projections"
)

// KeyFile is the name of the session key's file in a data directory. The
// key lives beside the data so that sessions survive a restart.
const KeyFile = "session.key"

// Names and limits of the session machinery.
const (
	sessionCookie = "piperun_session"
	// loginCookie carries the sign-in form's CSRF token before there is a
	// session to bind it to.
	loginCookie = "piperun_login"
	// CSRFHeader is the header in which the pages' scripts send the
	// session's CSRF token with state-changing API calls.
	CSRFHeader = "X-CSRF-Token"
	// csrfField is the hidden form field that carries it in plain forms.
	csrfField = "csrf"

	// sessionTTL is a session's absolute limit, however active it is.
	sessionTTL = 7 * 24 * time.Hour
	// DefaultSessionIdle is how long a session may go unused before it
	// ends (Server.SessionIdle).
	DefaultSessionIdle = 12 * time.Hour
	loginTTL           = time.Hour
	maxFormBytes       = 2 << 20
)

// errCSRF refuses a cookie-authenticated state change without the
// session's CSRF token.
var errCSRF = errors.New("missing or wrong CSRF token: reload the page and try again")

// LoadKey returns the session key stored at path, creating a random one
// (readable by the owner only) when the file does not exist yet.
func LoadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("generate session key: %w", err)
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			// Another process created it first: use theirs.
			return LoadKey(path)
		}
		if err != nil {
			return nil, fmt.Errorf("create session key %s: %w", path, err)
		}
		_, werr := f.WriteString(hex.EncodeToString(key) + "\n")
		if err := errors.Join(werr, f.Sync(), f.Close()); err != nil {
			return nil, fmt.Errorf("write session key %s: %w", path, err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read session key %s: %w", path, err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < 32 {
		return nil, fmt.Errorf("session key %s is not 32 or more hex-encoded bytes; delete it to make a new one (everyone will have to sign in again)", path)
	}
	return key, nil
}

// sealer encrypts and authenticates cookie values (AES-256-GCM), so that a
// cookie can be neither read nor forged without the key.
type sealer struct{ aead cipher.AEAD }

func newSealer(key []byte) (*sealer, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("session key has %d bytes; at least 32 are needed", len(key))
	}
	// Derive the cipher key so that the stored key is never used directly
	// and a future second use of it gets a key of its own.
	k := sha256.Sum256(append([]byte("piperun web session v1\x00"), key...))
	block, err := aes.NewCipher(k[:])
	if err != nil {
		return nil, fmt.Errorf("session cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("session cipher: %w", err)
	}
	return &sealer{aead: aead}, nil
}

// seal encodes v for the cookie called name; the name is authenticated too,
// so that one cookie's value cannot stand in for another's.
func (s *sealer) seal(name string, v any) (string, error) {
	plain, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encode %s cookie: %w", name, err)
	}
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plain)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal %s cookie: %w", name, err)
	}
	return base64.RawURLEncoding.EncodeToString(s.aead.Seal(nonce, nonce, plain, []byte(name))), nil
}

// open decodes a value sealed for the cookie called name.
func (s *sealer) open(name, value string, v any) error {
	raw, err := base64.RawURLEncoding.DecodeString(value)
	if err != nil || len(raw) < s.aead.NonceSize() {
		return fmt.Errorf("%s cookie is malformed", name)
	}
	n := s.aead.NonceSize()
	plain, err := s.aead.Open(nil, raw[:n], raw[n:], []byte(name))
	if err != nil {
		return fmt.Errorf("%s cookie does not verify", name)
	}
	if err := json.Unmarshal(plain, v); err != nil {
		return fmt.Errorf("%s cookie: %w", name, err)
	}
	return nil
}

// session is what the session cookie holds. The token's hash (never the
// token) is kept so that every request re-checks the user against the read
// model: a user whose token is revoked or rotated loses their sessions. ID
// names the session in the SessionEnded event that signing out records, so
// that a copy of the cookie is refused afterwards on every replica. Seen is
// when the session was last used (the cookie is sealed anew as it is used),
// for the idle limit; Expires is the absolute limit.
type session struct {
	ID        string `json:"i"`
	User      string `json:"u"`
	TokenHash string `json:"h"`
	CSRF      string `json:"c"`
	Seen      int64  `json:"s"`
	Expires   int64  `json:"e"`
}

// loginState is what the sign-in form's cookie holds.
type loginState struct {
	CSRF    string `json:"c"`
	Expires int64  `json:"e"`
}

type sessionKey struct{}

func withSession(ctx context.Context, s session) context.Context {
	return context.WithValue(ctx, sessionKey{}, s)
}

func sessionFrom(ctx context.Context) (session, bool) {
	s, ok := ctx.Value(sessionKey{}).(session)
	return s, ok
}

func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func (s *Server) setCookie(w http.ResponseWriter, r *http.Request, name, value string, ttl time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(ttl.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
}

func (s *Server) clearCookie(w http.ResponseWriter, r *http.Request, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil,
	})
}

// now is the server's clock.
func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// idle is the session idle limit in force.
func (s *Server) idle() time.Duration {
	if s.SessionIdle > 0 {
		return s.SessionIdle
	}
	return DefaultSessionIdle
}

// readSession returns the request's session, if its cookie verifies and
// has reached neither its absolute nor its idle limit. A cookie sealed
// before sessions had an id is refused: its user signs in again.
func (s *Server) readSession(r *http.Request) (session, bool) {
	c, err := r.Cookie(sessionCookie)
	if err != nil || c.Value == "" {
		return session{}, false
	}
	var sess session
	if err := s.seal.open(sessionCookie, c.Value, &sess); err != nil {
		return session{}, false
	}
	now := s.now()
	if sess.ID == "" || sess.User == "" || sess.CSRF == "" || now.Unix() >= sess.Expires ||
		now.Sub(time.Unix(sess.Seen, 0)) >= s.idle() {
		return session{}, false
	}
	return sess, true
}

// touch seals the session anew with the time it was last used, at most
// every idle/60 (a minute for the default), so that the idle limit counts
// from its last use without a new cookie on every request.
func (s *Server) touch(w http.ResponseWriter, r *http.Request, sess session) {
	now := s.now()
	if now.Sub(time.Unix(sess.Seen, 0)) < s.idle()/60 {
		return
	}
	sess.Seen = now.Unix()
	sealed, err := s.seal.seal(sessionCookie, sess)
	if err != nil {
		s.Logger.Warn("renew session cookie", "err", err)
		return
	}
	s.setCookie(w, r, sessionCookie, sealed, time.Unix(sess.Expires, 0).Sub(now))
}

// newSession starts a session of actor, signed in with the token whose
// hash is tokenHash, and returns its cookie value and lifetime.
func (s *Server) newSession(actor domain.Actor, tokenHash string) (sealed string, ttl time.Duration, err error) {
	id, err := randomToken()
	if err != nil {
		return "", 0, err
	}
	csrf, err := randomToken()
	if err != nil {
		return "", 0, err
	}
	now := s.now()
	sealed, err = s.seal.seal(sessionCookie, session{
		ID: id, User: actor.Name, TokenHash: tokenHash, CSRF: csrf, Seen: now.Unix(), Expires: now.Add(sessionTTL).Unix(),
	})
	return sealed, sessionTTL, err
}

// actorOf resolves a session to the user it belongs to now: refused if it
// was signed out of, or its token revoked or rotated since, as far as this
// replica's read models know.
func (s *Server) actorOf(ctx context.Context, sess session) (domain.Actor, error) {
	ended, err := s.Read.SessionEnded(ctx, sess.ID)
	if err != nil {
		return domain.Actor{}, err
	}
	if ended {
		return domain.Actor{}, fmt.Errorf("%w: the session was signed out of; sign in again", request.ErrUnauthorized)
	}
	u, err := s.Read.UserByTokenHash(ctx, sess.TokenHash)
	if errors.Is(err, projections.ErrNotFound) || (err == nil && u.Name != sess.User) {
		return domain.Actor{}, fmt.Errorf("%w: the session's token is no longer valid; sign in again", request.ErrUnauthorized)
	}
	if err != nil {
		return domain.Actor{}, err
	}
	return domain.Actor{Name: u.Name, Admin: u.Admin}, nil
}

// sessions turns a valid session cookie into an authenticated actor for
// every route behind it, pages and JSON API alike. A request that carries
// an Authorization header is left to the API's token check: a Bearer
// token is not sent by browsers on their own, so it needs no CSRF token.
// A cookie-authenticated request that changes state must carry the
// session's CSRF token (header or form field).
func (s *Server) sessions(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			next.ServeHTTP(w, r)
			return
		}
		sess, ok := s.readSession(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		actor, err := s.actorOf(r.Context(), sess)
		if errors.Is(err, request.ErrUnauthorized) {
			s.clearCookie(w, r, sessionCookie)
			next.ServeHTTP(w, r)
			return
		}
		if err != nil {
			s.fail(w, r, request.StatusFor(err), err)
			return
		}
		// The sign-in form checks its own token: its user has no session
		// token yet, or one that is about to be replaced.
		if !safeMethod(r.Method) && r.URL.Path != "/login" {
			if err := checkCSRF(w, r, sess.CSRF); err != nil {
				s.fail(w, r, http.StatusForbidden, err)
				return
			}
		}
		s.touch(w, r, sess)
		next.ServeHTTP(w, r.WithContext(withSession(request.WithActor(r.Context(), actor), sess)))
	})
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// checkCSRF compares the request's CSRF token, from the header or (for a
// plain form) the form field, with want.
func checkCSRF(w http.ResponseWriter, r *http.Request, want string) error {
	got := r.Header.Get(CSRFHeader)
	if got == "" && isForm(r) {
		got = formValue(w, r, csrfField)
	}
	if got == "" || want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errCSRF
	}
	return nil
}

func isForm(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "application/x-www-form-urlencoded" || mt == "multipart/form-data"
}

// formValue reads a posted form field, bounding the body first.
func formValue(w http.ResponseWriter, r *http.Request, name string) string {
	if r.PostForm == nil {
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	}
	return r.PostFormValue(name)
}
