package esdbfake

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/EventStore/EventStore-Client-Go/v4/esdb"
	"github.com/EventStore/EventStore-Client-Go/v4/protos/shared"
	api "github.com/EventStore/EventStore-Client-Go/v4/protos/streams"
	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// Server is an in-process stand-in for an EventStoreDB node: the Streams
// gRPC service of EventStore-Client-Go's own protobuf definitions, enough
// of it for piperun's adapter (append with expected revision, stream and
// $all reads both ways, $maxCount metadata, filtered live $all
// subscriptions), served over real gRPC on a TCP port. It models the
// server behaviour the adapter relies on, as documented in
// eventstore/esdb/mapping.go; the real server is the authority (the
// adapter's contract test with PIPERUN_TEST_ESDB_URL). What it gives that
// a mock cannot: the real client, over real gRPC, with the client's real
// error values — and, for end-to-end tests, a network event store that
// several processes share.
//
// Like a real node, its $all holds system events: some at the start and one
// after every other append, so that reads page past hidden events. It
// keeps its events in memory; they survive Stop and Start.
type Server struct {
	log  *fakeLog
	addr string
	srv  *grpc.Server
}

// fakeLog is the state of the fake node; it survives a restart.
type fakeLog struct {
	api.UnimplementedStreamsServer

	mu      sync.Mutex
	all     []*fakeEvent
	streams map[string][]*fakeEvent
	next    uint64 // log position of the next event
	appends int
	changed chan struct{} // closed on every append
}

type fakeEvent struct {
	id          uuid.UUID
	stream      string
	revision    uint64
	pos         uint64 // commit == prepare, as for implicit transactions
	typ         string
	contentType string
	created     int64 // .NET ticks since the Unix epoch, as the server sends
	data, meta  []byte
}

// New returns a node with no events of its own, to be started on addr
// (host:port; "127.0.0.1:0" picks a free port).
func New(addr string) *Server {
	log := &fakeLog{streams: map[string][]*fakeEvent{}, changed: make(chan struct{})}
	log.mu.Lock()
	for i := range 3 {
		log.write("$stats-fake", "$statsCollected", []byte(`{"i":`+strconv.Itoa(i)+`}`), nil)
	}
	log.mu.Unlock()
	return &Server{log: log, addr: addr}
}

// Addr is the address the node listens on, once started.
func (f *Server) Addr() string { return f.addr }

// URL is a connection string with short discovery, so that a client of
// an unreachable node fails well under a second.
func (f *Server) URL() string {
	return "esdb://" + f.addr + "?tls=false&maxDiscoverAttempts=2&discoveryInterval=20&gossipTimeout=1"
}

// Start serves the node; after Stop, on the same address again.
func (f *Server) Start() error {
	lis, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", f.addr, err)
	}
	f.addr = lis.Addr().String()
	// The client pings every 10s even without calls; the default policy of a
	// gRPC server would hang up on it.
	f.srv = grpc.NewServer(grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}))
	api.RegisterStreamsServer(f.srv, f.log)
	go func() { _ = f.srv.Serve(lis) }()
	return nil
}

// Stop closes every connection and stops serving; the events stay.
func (f *Server) Stop() { f.srv.Stop() }

// Count returns the number of events in stream, $maxCount ignored.
func (f *Server) Count(stream string) int { return f.log.count(stream) }

// write appends one event to stream. f.mu must be held.
func (l *fakeLog) write(stream, typ string, data, meta []byte) *fakeEvent {
	ev := &fakeEvent{
		id:          uuid.New(),
		stream:      stream,
		revision:    uint64(len(l.streams[stream])),
		pos:         l.next,
		typ:         typ,
		contentType: "application/json",
		created:     time.Now().UnixNano() / 100,
		data:        data,
		meta:        meta,
	}
	// Positions are byte offsets in the real log: never one apart.
	l.next += 128 + uint64(len(data)+len(meta))
	l.all = append(l.all, ev)
	l.streams[stream] = append(l.streams[stream], ev)
	return ev
}

func (l *fakeLog) Append(srv api.Streams_AppendServer) error {
	head, err := srv.Recv()
	if err != nil {
		return err
	}
	opts := head.GetOptions()
	if opts == nil {
		return status.Error(codes.InvalidArgument, "append without options")
	}
	stream := string(opts.GetStreamIdentifier().GetStreamName())
	var msgs []*api.AppendReq_ProposedMessage
	for {
		req, err := srv.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		msgs = append(msgs, req.GetProposedMessage())
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	n := uint64(len(l.streams[stream]))
	var ok bool
	wrong := &api.AppendResp_WrongExpectedVersion{}
	switch e := opts.GetExpectedStreamRevision().(type) {
	case *api.AppendReq_Options_Any:
		ok = true
		wrong.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedAny{ExpectedAny: &shared.Empty{}}
	case *api.AppendReq_Options_NoStream:
		ok = n == 0
		wrong.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedNoStream{ExpectedNoStream: &shared.Empty{}}
	case *api.AppendReq_Options_StreamExists:
		ok = n > 0
		wrong.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedStreamExists{ExpectedStreamExists: &shared.Empty{}}
	case *api.AppendReq_Options_Revision:
		ok = n > 0 && n-1 == e.Revision
		wrong.ExpectedRevisionOption = &api.AppendResp_WrongExpectedVersion_ExpectedRevision{ExpectedRevision: e.Revision}
	}
	if !ok {
		if n == 0 {
			wrong.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentNoStream{CurrentNoStream: &shared.Empty{}}
		} else {
			wrong.CurrentRevisionOption = &api.AppendResp_WrongExpectedVersion_CurrentRevision{CurrentRevision: n - 1}
		}
		return srv.SendAndClose(&api.AppendResp{Result: &api.AppendResp_WrongExpectedVersion_{WrongExpectedVersion: wrong}})
	}
	var first, last *fakeEvent
	for _, m := range msgs {
		s := m.GetId().GetStructured()
		id, err := esdb.ParseUUIDFromInt64(s.GetMostSignificantBits(), s.GetLeastSignificantBits())
		if err != nil {
			return status.Error(codes.InvalidArgument, "bad event id")
		}
		ev := l.write(stream, m.GetMetadata()["type"], m.GetData(), m.GetCustomMetadata())
		ev.id = id
		ev.contentType = m.GetMetadata()["content-type"]
		if first == nil {
			first = ev
		}
		last = ev
	}
	l.appends++
	if l.appends%2 == 0 {
		l.write("$stats-fake", "$statsCollected", []byte(`{}`), nil)
	}
	close(l.changed)
	l.changed = make(chan struct{})
	// As the server does for an implicit transaction: the commit position
	// is the last event's, the prepare position the first's.
	return srv.SendAndClose(&api.AppendResp{Result: &api.AppendResp_Success_{Success: &api.AppendResp_Success{
		CurrentRevisionOption: &api.AppendResp_Success_CurrentRevision{CurrentRevision: last.revision},
		PositionOption: &api.AppendResp_Success_Position{Position: &api.AppendResp_Position{
			CommitPosition: last.pos, PreparePosition: first.pos,
		}},
	}}})
}

func (l *fakeLog) Read(req *api.ReadReq, srv api.Streams_ReadServer) error {
	opts := req.GetOptions()
	if opts.GetSubscription() != nil {
		return l.subscribe(opts, srv)
	}
	backwards := opts.GetReadDirection() == api.ReadReq_Options_Backwards
	count := opts.GetCount()
	l.mu.Lock()
	var evs []*fakeEvent
	if so := opts.GetStream(); so != nil {
		name := string(so.GetStreamIdentifier().GetStreamName())
		stream, found := l.visible(name)
		if !found {
			l.mu.Unlock()
			return srv.Send(&api.ReadResp{Content: &api.ReadResp_StreamNotFound_{StreamNotFound: &api.ReadResp_StreamNotFound{
				StreamIdentifier: so.GetStreamIdentifier(),
			}}})
		}
		evs = pick(stream, backwards, count, func(ev *fakeEvent) bool {
			switch r := so.GetRevisionOption().(type) {
			case *api.ReadReq_Options_StreamOptions_Revision:
				if backwards {
					return ev.revision <= r.Revision
				}
				return ev.revision >= r.Revision
			}
			return true // Start forwards, End backwards
		})
	} else {
		ao := opts.GetAll()
		evs = pick(l.all, backwards, count, func(ev *fakeEvent) bool {
			p := ao.GetPosition()
			if p == nil {
				return true
			}
			// Forwards includes the event at the position, backwards
			// starts before it.
			if backwards {
				return ev.pos < p.GetCommitPosition()
			}
			return ev.pos >= p.GetCommitPosition()
		})
	}
	l.mu.Unlock()
	for _, ev := range evs {
		if err := srv.Send(readResp(ev)); err != nil {
			return err
		}
	}
	return nil
}

// visible returns the events of stream that its $maxCount leaves readable.
func (l *fakeLog) visible(stream string) ([]*fakeEvent, bool) {
	evs, ok := l.streams[stream]
	if !ok {
		return nil, false
	}
	if meta := l.streams["$$"+stream]; len(meta) > 0 {
		var m struct {
			MaxCount int `json:"$maxCount"`
		}
		if json.Unmarshal(meta[len(meta)-1].data, &m) == nil && m.MaxCount > 0 && len(evs) > m.MaxCount {
			evs = evs[len(evs)-m.MaxCount:]
		}
	}
	return evs, true
}

// pick returns up to count events of evs that pass from, in read order.
func pick(evs []*fakeEvent, backwards bool, count uint64, from func(*fakeEvent) bool) []*fakeEvent {
	var out []*fakeEvent
	for i := range evs {
		ev := evs[i]
		if backwards {
			ev = evs[len(evs)-1-i]
		}
		if uint64(len(out)) == count {
			break
		}
		if from(ev) {
			out = append(out, ev)
		}
	}
	return out
}

// subscribe serves a live subscription to $all from its end.
func (l *fakeLog) subscribe(opts *api.ReadReq_Options, srv api.Streams_ReadServer) error {
	if opts.GetAll() == nil || opts.GetAll().GetEnd() == nil {
		return status.Error(codes.Unimplemented, "the fake serves only $all subscriptions from the end")
	}
	match, err := filterOf(opts.GetFilter())
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	l.mu.Lock()
	seen, changed := len(l.all), l.changed
	l.mu.Unlock()
	if err := srv.Send(&api.ReadResp{Content: &api.ReadResp_Confirmation{Confirmation: &api.ReadResp_SubscriptionConfirmation{SubscriptionId: uuid.NewString()}}}); err != nil {
		return err
	}
	for {
		select {
		case <-srv.Context().Done():
			return srv.Context().Err()
		case <-changed:
		}
		l.mu.Lock()
		fresh := l.all[seen:]
		seen, changed = len(l.all), l.changed
		l.mu.Unlock()
		for _, ev := range fresh {
			if !match(ev) {
				continue
			}
			if err := srv.Send(readResp(ev)); err != nil {
				return err
			}
		}
	}
}

// filterOf builds the server-side filter of a subscription: regex or
// prefixes, on the stream name or the event type.
func filterOf(f *api.ReadReq_Options_FilterOptions) (func(*fakeEvent) bool, error) {
	if f == nil {
		return func(*fakeEvent) bool { return true }, nil
	}
	expr, onType := f.GetStreamIdentifier(), false
	if expr == nil {
		expr, onType = f.GetEventType(), true
	}
	var re *regexp.Regexp
	if expr.GetRegex() != "" {
		var err error
		if re, err = regexp.Compile(expr.GetRegex()); err != nil {
			return nil, err
		}
	}
	return func(ev *fakeEvent) bool {
		subject := ev.stream
		if onType {
			subject = ev.typ
		}
		if re != nil {
			return re.MatchString(subject)
		}
		for _, p := range expr.GetPrefix() {
			if strings.HasPrefix(subject, p) {
				return true
			}
		}
		return false
	}, nil
}

func readResp(ev *fakeEvent) *api.ReadResp {
	most, least := esdb.UUIDAsInt64(ev.id)
	return &api.ReadResp{Content: &api.ReadResp_Event{Event: &api.ReadResp_ReadEvent{
		Event: &api.ReadResp_ReadEvent_RecordedEvent{
			Id:               &shared.UUID{Value: &shared.UUID_Structured_{Structured: &shared.UUID_Structured{MostSignificantBits: most, LeastSignificantBits: least}}},
			StreamIdentifier: &shared.StreamIdentifier{StreamName: []byte(ev.stream)},
			StreamRevision:   ev.revision,
			PreparePosition:  ev.pos,
			CommitPosition:   ev.pos,
			Metadata:         map[string]string{"type": ev.typ, "content-type": ev.contentType, "created": strconv.FormatInt(ev.created, 10)},
			CustomMetadata:   ev.meta,
			Data:             ev.data,
		},
		Position: &api.ReadResp_ReadEvent_CommitPosition{CommitPosition: ev.pos},
	}}}
}

// count returns the number of events in stream, $maxCount ignored.
func (l *fakeLog) count(stream string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.streams[stream])
}
