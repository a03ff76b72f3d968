package kafka

import (
	"fmt"

	"github.com/xdg-go/scram"
)

// scramClient adapts xdg-go/scram's client conversation (RFC 5802) to
// sarama.SCRAMClient.
type scramClient struct {
	hash scram.HashGeneratorFcn
	conv *scram.ClientConversation
}

// Begin implements sarama.SCRAMClient.
func (c *scramClient) Begin(user, password, authzID string) error {
	client, err := c.hash.NewClient(user, password, authzID)
	if err != nil {
		return fmt.Errorf("scram: %w", err)
	}
	c.conv = client.NewConversation()
	return nil
}

// Step implements sarama.SCRAMClient: the client's first message, its
// proof, then the check of the server's signature.
func (c *scramClient) Step(challenge string) (string, error) {
	return c.conv.Step(challenge)
}

// Done implements sarama.SCRAMClient.
func (c *scramClient) Done() bool { return c.conv.Done() }
