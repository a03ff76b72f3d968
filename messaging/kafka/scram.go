package kafka

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
)

// scramClient is the client side of SCRAM (RFC 5802) for sarama, written
// here rather than taken from a library: it is a page of code over the
// standard library's HMAC and PBKDF2.
type scramClient struct {
	hash func() hash.Hash

	user, password string
	nonce          string
	firstBare      string
	serverSig      []byte
	step           int
	done           bool
}

// Begin implements sarama.SCRAMClient.
func (c *scramClient) Begin(user, password, _ string) error {
	c.user, c.password = user, password
	c.nonce = rand.Text()
	c.step, c.done = 0, false
	return nil
}

// Step implements sarama.SCRAMClient: the client's first message, its
// proof, then the check of the server's signature.
func (c *scramClient) Step(challenge string) (string, error) {
	c.step++
	switch c.step {
	case 1:
		name := strings.NewReplacer("=", "=3D", ",", "=2C").Replace(c.user)
		c.firstBare = "n=" + name + ",r=" + c.nonce
		return "n,," + c.firstBare, nil
	case 2:
		return c.proof(challenge)
	case 3:
		c.done = true
		attrs := scramAttrs(challenge)
		if e, ok := attrs["e"]; ok {
			return "", fmt.Errorf("SCRAM: the broker refused the authentication: %s", e)
		}
		got, err := base64.StdEncoding.DecodeString(attrs["v"])
		if err != nil || subtle.ConstantTimeCompare(got, c.serverSig) != 1 {
			return "", errors.New("SCRAM: the broker's signature does not match: it does not know the password")
		}
		return "", nil
	default:
		return "", errors.New("SCRAM: the broker sent more than the exchange has")
	}
}

// Done implements sarama.SCRAMClient.
func (c *scramClient) Done() bool { return c.done }

func (c *scramClient) proof(serverFirst string) (string, error) {
	attrs := scramAttrs(serverFirst)
	nonce, salt64, iters := attrs["r"], attrs["s"], attrs["i"]
	if !strings.HasPrefix(nonce, c.nonce) || len(nonce) == len(c.nonce) {
		return "", errors.New("SCRAM: the broker's nonce does not extend piperun's")
	}
	salt, err := base64.StdEncoding.DecodeString(salt64)
	if err != nil {
		return "", fmt.Errorf("SCRAM: the broker's salt: %w", err)
	}
	n, err := strconv.Atoi(iters)
	if err != nil || n < 1 {
		return "", fmt.Errorf("SCRAM: the broker's iteration count %q", iters)
	}
	salted, err := pbkdf2.Key(c.hash, c.password, salt, n, c.hash().Size())
	if err != nil {
		return "", fmt.Errorf("SCRAM: derive the key: %w", err)
	}
	clientKey := c.hmac(salted, "Client Key")
	h := c.hash()
	h.Write(clientKey)
	storedKey := h.Sum(nil)
	finalBare := "c=" + base64.StdEncoding.EncodeToString([]byte("n,,")) + ",r=" + nonce
	auth := c.firstBare + "," + serverFirst + "," + finalBare
	sig := c.hmac(storedKey, auth)
	for i := range clientKey {
		clientKey[i] ^= sig[i]
	}
	c.serverSig = c.hmac(c.hmac(salted, "Server Key"), auth)
	return finalBare + ",p=" + base64.StdEncoding.EncodeToString(clientKey), nil
}

func (c *scramClient) hmac(key []byte, msg string) []byte {
	m := hmac.New(c.hash, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// scramAttrs splits "a=1,b=2" into its attributes.
func scramAttrs(s string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}
