package kafka

import (
	"github.com/IBM/sarama"
	wkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/piperun/piperun/messaging"
)

// Marshaler writes a run event message as one Kafka record: key = the
// message's partition_key metadata (the run name), value = the event's
// JSON, headers = the CloudEvents attributes exactly as the messaging
// package names them (ce_specversion, ce_id, ce_type, …, content-type).
//
// watermill's own headers are left out: partition_key repeats the key,
// and the message UUID is the event id, already in ce_id. A reader in any
// language thus sees only the CloudEvents Kafka binding.
type Marshaler struct{}

var _ wkafka.MarshalerUnmarshaler = Marshaler{}

var keyed = wkafka.NewWithPartitioningMarshaler(func(_ string, msg *message.Message) (string, error) {
	return msg.Metadata.Get(messaging.MetaPartitionKey), nil
})

// Marshal implements watermill-kafka's Marshaler.
func (Marshaler) Marshal(topic string, msg *message.Message) (*sarama.ProducerMessage, error) {
	pm, err := keyed.Marshal(topic, msg)
	if err != nil {
		return nil, err
	}
	kept := pm.Headers[:0]
	for _, h := range pm.Headers {
		switch string(h.Key) {
		case wkafka.UUIDHeaderKey, messaging.MetaPartitionKey:
			continue
		}
		kept = append(kept, h)
	}
	pm.Headers = kept
	return pm, nil
}

// Unmarshal implements watermill-kafka's Unmarshaler. The message UUID is
// the CloudEvents id; the record key comes back as partition_key.
func (Marshaler) Unmarshal(cm *sarama.ConsumerMessage) (*message.Message, error) {
	msg, err := keyed.Unmarshal(cm)
	if err != nil {
		return nil, err
	}
	if msg.UUID == "" {
		msg.UUID = msg.Metadata.Get(messaging.MetaID)
	}
	if len(cm.Key) > 0 {
		msg.Metadata.Set(messaging.MetaPartitionKey, string(cm.Key))
	}
	return msg, nil
}
