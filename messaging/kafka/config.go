package kafka

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"

	"github.com/IBM/sarama"

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
}

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
	return nil
}

// baseConfig holds what every connection of piperun shares.
func (c Config) baseConfig() *sarama.Config {
	sc := sarama.NewConfig()
	sc.Version = protocolVersion
	sc.ClientID = c.ClientID
	sc.Net.DialTimeout = 10 * time.Second
	sc.Metadata.Retry.Max = 3
	sc.Metadata.Retry.Backoff = 250 * time.Millisecond
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
