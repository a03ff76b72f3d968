package messaging

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/piperun/piperun/eventstore"
)

// DefaultTopic carries every run event.
const DefaultTopic = "piperun.run-events"

// Metadata keys. The ce_* keys are the CloudEvents Kafka protocol binding's
// header names; the piperun_* ones are extensions for consumers that want
// the store coordinates.
const (
	MetaSpecVersion = "ce_specversion"
	MetaID          = "ce_id"
	MetaType        = "ce_type"
	MetaSource      = "ce_source"
	MetaSubject     = "ce_subject"
	MetaTime        = "ce_time"
	MetaContentType = "content-type"
	MetaStream      = "ce_piperunstream"
	MetaVersion     = "ce_piperunversion"
	MetaPosition    = "ce_piperunposition"
	MetaActor       = "ce_piperunactor"
	// MetaPartitionKey is read by the Kafka marshaler as the message key.
	MetaPartitionKey = "partition_key"
)

// Source is the CloudEvents source of piperun's events.
const Source = "piperun"

// RunName returns the run a stream belongs to, or "" for other streams.
func RunName(stream string) string {
	if name, ok := strings.CutPrefix(stream, "run-"); ok {
		return name
	}
	return ""
}

// ToMessage converts a stored run event to a message.
func ToMessage(ev eventstore.Event) *message.Message {
	msg := message.NewMessage(ev.ID, ev.Data)
	run := RunName(ev.Stream)
	msg.Metadata.Set(MetaSpecVersion, "1.0")
	msg.Metadata.Set(MetaID, ev.ID)
	msg.Metadata.Set(MetaType, ev.Type)
	msg.Metadata.Set(MetaSource, Source)
	msg.Metadata.Set(MetaSubject, run)
	msg.Metadata.Set(MetaTime, ev.Time.UTC().Format(time.RFC3339Nano))
	msg.Metadata.Set(MetaContentType, "application/json")
	msg.Metadata.Set(MetaStream, ev.Stream)
	msg.Metadata.Set(MetaVersion, strconv.FormatInt(ev.Version, 10))
	msg.Metadata.Set(MetaPosition, strconv.FormatInt(ev.Position, 10))
	msg.Metadata.Set(MetaActor, ev.Actor)
	msg.Metadata.Set(MetaPartitionKey, run)
	return msg
}

// Envelope is what a consumer needs of a message.
type Envelope struct {
	ID      string
	Type    string
	Run     string
	Version int64
	Time    time.Time
	Actor   string
	Data    []byte
}

// FromMessage reads a run event message.
func FromMessage(msg *message.Message) (Envelope, error) {
	env := Envelope{
		ID:    msg.Metadata.Get(MetaID),
		Type:  msg.Metadata.Get(MetaType),
		Run:   msg.Metadata.Get(MetaSubject),
		Actor: msg.Metadata.Get(MetaActor),
		Data:  msg.Payload,
	}
	if env.Type == "" || env.Run == "" {
		return Envelope{}, fmt.Errorf("message %s: missing %s or %s", msg.UUID, MetaType, MetaSubject)
	}
	if v := msg.Metadata.Get(MetaVersion); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return Envelope{}, fmt.Errorf("message %s: bad %s %q: %w", msg.UUID, MetaVersion, v, err)
		}
		env.Version = n
	}
	if t := msg.Metadata.Get(MetaTime); t != "" {
		tt, err := time.Parse(time.RFC3339Nano, t)
		if err != nil {
			return Envelope{}, fmt.Errorf("message %s: bad %s %q: %w", msg.UUID, MetaTime, t, err)
		}
		env.Time = tt
	}
	return env, nil
}
