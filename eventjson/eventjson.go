package eventjson

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore"
)

// Encode returns the event's type name and JSON body, as encoding/json
// writes it (the form every stored event has, and outside consumers of
// the published events read).
func Encode(e domain.Event) (string, []byte, error) {
	data, err := json.Marshal(e)
	if err != nil {
		return "", nil, fmt.Errorf("encode %s: %w", e.EventType(), err)
	}
	return e.EventType(), data, nil
}

// Recorded decodes a stored event into the domain's form, with the
// version, time and actor the store recorded.
func Recorded(ev eventstore.Event) (domain.Recorded, error) {
	e, err := Decode(ev.Type, ev.Data)
	if err != nil {
		return domain.Recorded{}, fmt.Errorf("event %d of %s: %w", ev.Version, ev.Stream, err)
	}
	return domain.Recorded{Version: ev.Version, Time: ev.Time, Actor: ev.Actor, Event: e}, nil
}

// Decode parses a stored event body by its type name into the event's
// value type (as decisions produce it, so that Apply sees one shape). A
// change of an event's shape gets a new type name, and its old versions
// are upcast to the current shape here.
func Decode(typ string, data []byte) (domain.Event, error) {
	switch typ {
	case domain.TypeRunCreated:
		return decode[domain.RunCreated](typ, data)
	case domain.TypeConfigUpdated:
		return decode[domain.ConfigUpdated](typ, data)
	case domain.TypeProcessingRequested:
		return decode[domain.ProcessingRequested](typ, data)
	case domain.TypeProcessingStarted:
		return decode[domain.ProcessingStarted](typ, data)
	case domain.TypeProcessingCompleted:
		return decode[domain.ProcessingCompleted](typ, data)
	case domain.TypeProcessingFailed:
		return decode[domain.ProcessingFailed](typ, data)
	case domain.TypeLogWritten:
		return decode[domain.LogWritten](typ, data)
	case domain.TypeRestoreRequested:
		return decode[domain.RestoreRequested](typ, data)
	case domain.TypeRunRestored:
		return decode[domain.RunRestored](typ, data)
	case domain.TypeRestoreFailed:
		return decode[domain.RestoreFailed](typ, data)
	case domain.TypeDeletionRequested:
		return decode[domain.DeletionRequested](typ, data)
	case domain.TypeRunDeleted:
		return decode[domain.RunDeleted](typ, data)
	case domain.TypeUserCreated:
		return decode[domain.UserCreated](typ, data)
	case domain.TypeUserTokenRevoked:
		return decode[domain.UserTokenRevoked](typ, data)
	case domain.TypeUserTokenRotated:
		return decode[domain.UserTokenRotated](typ, data)
	case domain.TypeSessionEnded:
		return decode[domain.SessionEnded](typ, data)
	}
	return nil, fmt.Errorf("decode event: unknown type %q", typ)
}

// decode parses data as an E.
func decode[E domain.Event](typ string, data []byte) (domain.Event, error) {
	var e E
	if err := jsonv2.Unmarshal(data, &e, decodeOptions); err != nil {
		return nil, fmt.Errorf("decode %s: %w", typ, err)
	}
	return e, nil
}

// plainOptions make the JSON v2 engine decode exactly as encoding/json
// does (case-insensitive names, duplicate names and invalid UTF-8
// accepted, null leaving a value as it is, ...), about twice as fast:
// decoding is a large part of a read-model rebuild's work.
var plainOptions = jsonv1.DefaultOptionsV1()

// decodeOptions add the caches of configurations and products to
// plainOptions.
var decodeOptions = jsonv2.JoinOptions(plainOptions, jsonv2.WithUnmarshalers(jsonv2.JoinUnmarshalers(
	jsonv2.UnmarshalFunc(configs.unmarshal),
	jsonv2.UnmarshalFunc(products.unmarshal),
)))

// A run's events repeat its configuration and products: a processing
// request carries the configuration set by the event before it, and its
// backup the configuration and products of the processing before. These
// caches keep the last ones decoded, by their exact JSON text, so that
// decoding a log parses each once. They are bounded, and hand out deep
// copies.
var (
	configs  = decodeCache[domain.RunConfig]{clone: domain.RunConfig.ExactClone}
	products = decodeCache[domain.Products]{clone: domain.Products.ExactClone}
)

// decodeCacheBytes bounds the JSON text each cache holds (the values take
// about as much again): room for the configurations and products of
// hundreds of runs whose events interleave in a log. A cache that is full
// starts again empty.
const decodeCacheBytes = 8 << 20

// decodeCache maps a JSON object's text to the value it decodes to.
type decodeCache[T any] struct {
	clone func(T) T
	mu    sync.Mutex
	m     map[string]T
	bytes int // the text of the keys of m
}

// unmarshal decodes data into v as plainOptions do, from the cache when
// it can: when v is still zero (a name given twice merges into the value
// of the first) and data is an object (null leaves v as it is).
func (c *decodeCache[T]) unmarshal(data []byte, v *T) error {
	if len(data) == 0 || data[0] != '{' || len(data) > decodeCacheBytes/64 || !reflect.ValueOf(v).Elem().IsZero() {
		return jsonv2.Unmarshal(data, v, plainOptions)
	}
	c.mu.Lock()
	cached, ok := c.m[string(data)]
	c.mu.Unlock()
	if ok {
		*v = c.clone(cached)
		return nil
	}
	if err := jsonv2.Unmarshal(data, v, plainOptions); err != nil {
		return err
	}
	kept := c.clone(*v)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || c.bytes+len(data) > decodeCacheBytes {
		c.m, c.bytes = map[string]T{}, 0
	}
	if _, ok := c.m[string(data)]; !ok {
		c.m[string(data)] = kept
		c.bytes += len(data)
	}
	return nil
}
