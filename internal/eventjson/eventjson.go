package eventjson

import (
	"reflect"
	"sync"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/piperun/piperun/domain"
)

// Decode parses a stored event body by its type name, as domain.Decode
// does.
func Decode(typ string, data []byte) (domain.Event, error) {
	return domain.DecodeWith(typ, data, unmarshal)
}

func unmarshal(data []byte, v any) error { return jsonv2.Unmarshal(data, v, decodeOptions) }

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
