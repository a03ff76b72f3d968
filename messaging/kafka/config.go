package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/IBM/sarama"
	"github.com/xdg-go/scram"

	"github.com/piperun/piperun/messaging"
)

// DefaultConsumerGroup is the group every piperun worker consumes in.
const DefaultConsumerGroup = "piperun-workers"

// Defaults of Config.
const (
	DefaultPartitions = 6
	DefaultStallAfter = 30 * time.Second
	DefaultCheckEvery = 5 * time.Second
	DefaultClientID   = "piperun"
	// DefaultMaxMessageBytes holds the largest event the API can store:
	// a request body is at most 2 MiB (handlers/api.MaxBodyBytes), of which
	// an add-mode event carries two configurations of up to 1 MiB each
	// (runconfig.MaxSize), and JSON may escape a configuration's bytes
	// (a quote or newline doubles). 8 MiB leaves room for both.
	DefaultMaxMessageBytes = 8 << 20
	// MaxMaxMessageBytes is a broker's default socket.request.max.bytes:
	// a request larger than that is refused whatever the topic allows.
	MaxMaxMessageBytes = 100 << 20
	DefaultBatchSize   = 100
	DefaultRelayGroup  = "piperun-relay"
)

// protocolVersion is the Kafka protocol level spoken: 2.8 is understood by
// every broker from 2.8 to 4.x (4.0 dropped the versions before 2.1) and
// needs sarama >= 1.46.2 against some brokers, whose consumer groups an
// older sarama fails to join without saying so.
var protocolVersion = sarama.V2_8_0_0

// Config configures the Kafka transport.
type Config struct {
	// Brokers are the bootstrap brokers, as host:port.
	Brokers []string
	// Topic carries the run events (default messaging.DefaultTopic).
	Topic string
	// ConsumerGroup is the workers' group (default DefaultConsumerGroup).
	ConsumerGroup string
	// Partitions is the partition count of the topic when piperun creates
	// it (default DefaultPartitions). An existing topic is left as it is.
	Partitions int32
	// ReplicationFactor of the topic when piperun creates it; 0 means the
	// broker's default.replication.factor.
	ReplicationFactor int16
	// StallAfter is how long messages may wait without the consumer group
	// committing anything before the watchdog reports a stall (default
	// DefaultStallAfter). A handler that legitimately runs longer than this
	// on one message is reported too.
	StallAfter time.Duration
	// CheckEvery is how often the watchdog looks at the group's progress,
	// and how often it logs a stall (default DefaultCheckEvery).
	CheckEvery time.Duration
	// ClientID names piperun's connections in the broker's logs (default
	// DefaultClientID).
	ClientID string
	// MaxMessageBytes is the largest record piperun produces, and the
	// max.message.bytes of the topics it creates (default
	// DefaultMaxMessageBytes). It must hold the largest event the API can
	// store; an event that is larger still goes to the dead-letter topic.
	MaxMessageBytes int
	// BatchSize is how many events the relay sends in one produce call
	// (default DefaultBatchSize).
	BatchSize int
	// RelayGroup is the consumer group whose member assigned the control
	// topic's partition relays the log (default DefaultRelayGroup).
	RelayGroup string
	// TLS, when Enabled, encrypts the connections to the brokers.
	TLS TLSConfig
	// SASL, when Mechanism is set, authenticates piperun to the brokers.
	SASL SASLConfig

	tlsConfig *tls.Config
}

// TLSConfig is how piperun speaks TLS to the brokers.
type TLSConfig struct {
	// Enabled turns TLS on; the other fields need it.
	Enabled bool
	// CAFile is a PEM bundle of the authorities that sign the brokers'
	// certificates (default: the system's).
	CAFile string
	// CertFile and KeyFile are piperun's client certificate and key, for
	// brokers that authenticate clients by certificate; both or neither.
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any broker certificate: for testing only,
	// and only when asked for by name.
	InsecureSkipVerify bool
}

// SASL mechanisms piperun speaks.
const (
	SASLSCRAMSHA256 = "SCRAM-SHA-256"
	SASLSCRAMSHA512 = "SCRAM-SHA-512"
)

// SASLConfig is how piperun authenticates to the brokers.
type SASLConfig struct {
	// Mechanism is SASLSCRAMSHA256 or SASLSCRAMSHA512; empty means no SASL.
	Mechanism string
	// User and Password are the SCRAM credentials.
	User     string
	Password string
}

// String hides the password, so that logging the configuration cannot
// leak it.
func (s SASLConfig) String() string {
	if s.Mechanism == "" {
		return "none"
	}
	return s.Mechanism + " user " + s.User
}

// LogValue hides the password from slog.
func (s SASLConfig) LogValue() slog.Value { return slog.StringValue(s.String()) }

// DeadLetterTopic is where the relay puts the events it cannot publish on
// topic.
func DeadLetterTopic(topic string) string { return topic + ".dead-letter" }

// ControlTopic is the one-partition topic the relay group is assigned:
// the member that gets its partition leads, and the group's committed
// offset metadata on it is the relay's checkpoint. Nothing is written to
// it.
func ControlTopic(topic string) string { return topic + ".relay" }

// ParseBrokers splits a comma-separated broker list, as given to
// --kafka-brokers, dropping blanks.
func ParseBrokers(s string) []string {
	var out []string
	for _, b := range strings.Split(s, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// validTopic is Kafka's rule for topic names.
var validTopic = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// Validate checks the configuration and fills defaults.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return errors.New("kafka: no broker given")
	}
	for _, b := range c.Brokers {
		host, port, err := net.SplitHostPort(b)
		if err != nil || host == "" || port == "" {
			return fmt.Errorf("kafka: broker %q is not host:port", b)
		}
	}
	if c.Topic == "" {
		c.Topic = messaging.DefaultTopic
	}
	if !validTopic.MatchString(c.Topic) || c.Topic == "." || c.Topic == ".." {
		return fmt.Errorf("kafka: topic %q: use 1 to 249 letters, digits, '.', '_' or '-'", c.Topic)
	}
	if c.ConsumerGroup == "" {
		c.ConsumerGroup = DefaultConsumerGroup
	}
	if c.Partitions < 0 || c.ReplicationFactor < 0 {
		return fmt.Errorf("kafka: partitions %d and replication factor %d may not be negative", c.Partitions, c.ReplicationFactor)
	}
	if c.Partitions == 0 {
		c.Partitions = DefaultPartitions
	}
	if c.StallAfter < 0 || c.CheckEvery < 0 {
		return errors.New("kafka: the watchdog's durations may not be negative")
	}
	if c.StallAfter == 0 {
		c.StallAfter = DefaultStallAfter
	}
	if c.CheckEvery == 0 {
		c.CheckEvery = min(DefaultCheckEvery, c.StallAfter)
	}
	if c.ClientID == "" {
		c.ClientID = DefaultClientID
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.MaxMessageBytes < 1024 || c.MaxMessageBytes > MaxMaxMessageBytes {
		return fmt.Errorf("kafka: max message bytes %d: use 1024 to %d", c.MaxMessageBytes, MaxMaxMessageBytes)
	}
	if c.BatchSize == 0 {
		c.BatchSize = DefaultBatchSize
	}
	if c.BatchSize < 1 || c.BatchSize > 10000 {
		return fmt.Errorf("kafka: batch size %d: use 1 to 10000", c.BatchSize)
	}
	if c.RelayGroup == "" {
		c.RelayGroup = DefaultRelayGroup
	}
	if c.RelayGroup == c.ConsumerGroup {
		return fmt.Errorf("kafka: the relay group and the workers' group are both %q: they must differ", c.RelayGroup)
	}
	for _, t := range []string{DeadLetterTopic(c.Topic), ControlTopic(c.Topic)} {
		if len(t) > 249 {
			return fmt.Errorf("kafka: topic %q is too long for its derived topic %q (249 characters at most)", c.Topic, t)
		}
	}
	tc, err := c.TLS.build()
	if err != nil {
		return err
	}
	c.tlsConfig = tc
	return c.SASL.validate()
}

// build checks the TLS settings and makes the client's configuration.
func (t TLSConfig) build() (*tls.Config, error) {
	if !t.Enabled {
		if t.CAFile != "" || t.CertFile != "" || t.KeyFile != "" || t.InsecureSkipVerify {
			return nil, errors.New("kafka: a TLS CA, certificate, key or insecure-skip-verify is given but TLS is not enabled")
		}
		return nil, nil
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("kafka: a TLS client certificate needs its key and a key its certificate")
	}
	if t.InsecureSkipVerify && t.CAFile != "" {
		return nil, errors.New("kafka: TLS insecure-skip-verify and a CA file contradict each other: the CA would not be checked")
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // only when set by name
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: read TLS CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka: TLS CA file %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka: load TLS client certificate %s and key %s: %w", t.CertFile, t.KeyFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func (s SASLConfig) validate() error {
	switch s.Mechanism {
	case "":
		if s.User != "" || s.Password != "" {
			return errors.New("kafka: a SASL user or password is given but no SASL mechanism")
		}
		return nil
	case SASLSCRAMSHA256, SASLSCRAMSHA512:
		if s.User == "" || s.Password == "" {
			return fmt.Errorf("kafka: SASL %s needs a user and a password", s.Mechanism)
		}
		return nil
	default:
		return fmt.Errorf("kafka: SASL mechanism %q: use %s or %s", s.Mechanism, SASLSCRAMSHA256, SASLSCRAMSHA512)
	}
}

// baseConfig holds what every connection of piperun shares.
func (c Config) baseConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = protocolVersion
	sc.ClientID = c.ClientID
	sc.Net.DialTimeout = 10 * time.Second
	sc.Metadata.Retry.Max = 3
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
	if c.TLS.Enabled {
		sc.Net.TLS.Enable = true
		sc.Net.TLS.Config = c.tlsConfig
		if sc.Net.TLS.Config == nil { // Validate not called: build now
			sc.Net.TLS.Config, _ = c.TLS.build()
		}
	}
	if c.SASL.Mechanism != "" {
		sc.Net.SASL.Enable = true
		sc.Net.SASL.Handshake = true
		sc.Net.SASL.User = c.SASL.User
		sc.Net.SASL.Password = c.SASL.Password
		sc.Net.SASL.Mechanism = sarama.SASLMechanism(c.SASL.Mechanism)
		hash := scram.SHA256
		if c.SASL.Mechanism == SASLSCRAMSHA512 {
			hash = scram.SHA512
		}
		sc.Net.SASL.SCRAMClientGeneratorFunc = func() sarama.SCRAMClient { return &scramClient{hash: hash} }
	}
	return sc
}

// producerConfig asks for an ordered, loss-free producer: idempotent (the
// broker drops a retried batch it already has), acknowledged by all
// in-sync replicas, one request in flight so that a retry cannot overtake
// the next message.
func (c Config) producerConfig() *sarama.Config {
	sc := c.baseConfig()
	sc.Producer.Idempotent = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Retry.Max = 5
	sc.Producer.Retry.BackoffFunc = func(retries, _ int) time.Duration {
		return min(100*time.Millisecond<<min(retries, 5), 2*time.Second)
	}
	sc.Producer.MaxMessageBytes = c.MaxMessageBytes
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	// The default hash partitioner (FNV-1a of the key) keeps every event
	// of a run on one partition. It is not Java's murmur2: a producer in
	// another language would place the same key elsewhere, which matters
	// only if something other than piperun writes this topic.
	sc.Producer.Partitioner = sarama.NewHashPartitioner
	return sc
}

// consumerConfig makes a new group start from the oldest offset: events
// published before the first worker started are work to do, not history.
func (c Config) consumerConfig() *sarama.Config {
	sc := c.baseConfig()
	sc.Consumer.Return.Errors = true
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = time.Second
	return sc
}
