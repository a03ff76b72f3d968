package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/piperun/piperun/relay"
)

// RelayLeader runs a relay in the one process of many that leads the
// relay group, with its checkpoint kept by Kafka, so that the processes
// that may relay need no disk in common.
//
// Why a consumer group and not a lease stream in the event store: the
// relay publishes to Kafka, so Kafka is up whenever relaying can happen at
// all, and a group gives, for nothing, what a lease would have to build:
// failure detection (the session timeout), a single owner per generation,
// a commit that the broker refuses from a deposed owner (the generation
// fences it), and no log that grows with every renewal. Every candidate
// joins Config.RelayGroup on ControlTopic (one partition, never written);
// the member assigned partition 0 relays. Its checkpoint is the metadata
// of the group's committed offset on that partition, written after each
// batch the brokers acknowledged, so a new leader resumes after the last
// acknowledged batch: only the batch in flight when the old leader died
// can be published twice, and consumers drop such copies by ce_id.
//
// When the group has no checkpoint yet (a new cluster, or an upgrade from
// the per-process checkpoints), the leader starts from Relay.Checkpoints,
// this process's own; it also saves there after each commit, as a
// fallback should the group's offsets ever expire (Kafka keeps a group's
// offsets offsets.retention.minutes, 7 days by default, after its last
// member left).
type RelayLeader struct {
	Config Config
	// Relay is the relay to run while leading; its Checkpoints are this
	// process's own (the fallback above), and Name keys them.
	Relay  *relay.Relay
	Logger *slog.Logger

	mu         sync.Mutex
	inGroup    bool
	leader     bool
	checkpoint int64
	known      bool
	brokerErr  error
}

// RelayLeaderStatus is what RelayLeader.Status reports.
type RelayLeaderStatus struct {
	// InGroup says whether this process holds an assignment of the group
	// now (as leader or standby).
	InGroup bool
	// Leader says whether this process relays now.
	Leader bool
	// Checkpoint is the group's last checkpoint this process knows of
	// (valid when Known).
	Checkpoint int64
	Known      bool
	// BrokerErr is the last failure to reach the group, nil once it is
	// reached again.
	BrokerErr error
}

// checkpointMeta is the committed offset metadata: the last position of
// the global log whose run events the brokers acknowledged.
type checkpointMeta struct {
	Position int64 `json:"position"`
}

// Status reports the process's part in the relay group.
func (l *RelayLeader) Status() RelayLeaderStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	return RelayLeaderStatus{InGroup: l.inGroup, Leader: l.leader, Checkpoint: l.checkpoint, Known: l.known, BrokerErr: l.brokerErr}
}

// Run takes part in the relay group until ctx ends.
func (l *RelayLeader) Run(ctx context.Context) error {
	if err := l.Config.Validate(); err != nil {
		return err
	}
	log := l.Logger
	if log == nil {
		log = slog.Default()
	}
	m := &Member{Config: l.Config, Group: l.Config.RelayGroup, Topic: ControlTopic(l.Config.Topic), Logger: log,
		OnError: l.setBrokerErr, Owner: func(ctx context.Context, a *Assignment) error { return l.own(ctx, a, log) }}
	return m.Run(ctx)
}

func (l *RelayLeader) setBrokerErr(err error) {
	l.mu.Lock()
	l.brokerErr = err
	l.mu.Unlock()
}

func (l *RelayLeader) setCheckpoint(p int64) {
	l.mu.Lock()
	l.checkpoint, l.known = p, true
	l.mu.Unlock()
}

// own runs for one generation of the group: relaying when it was given
// the control partition, else watching the leader's checkpoint.
func (l *RelayLeader) own(ctx context.Context, a *Assignment, log *slog.Logger) error {
	l.mu.Lock()
	l.inGroup = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.inGroup = false
		l.mu.Unlock()
	}()
	if !a.Owns(0) {
		log.Info("relay standing by: another process leads the relay group", "group", l.Config.RelayGroup, "generation", a.Generation)
		for {
			if err := l.readCheckpoint(ctx, a); err != nil && ctx.Err() == nil {
				l.setBrokerErr(err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(l.Config.CheckEvery):
			}
		}
	}
	log.Info("relaying to Kafka: this process leads the relay group", "group", l.Config.RelayGroup, "generation", a.Generation, "topic", l.Config.Topic)
	l.mu.Lock()
	l.leader = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.leader = false
		l.mu.Unlock()
		log.Info("relay leadership ended", "group", l.Config.RelayGroup, "generation", a.Generation)
	}()
	// The relay runs with the group's checkpoints; a copy, so that the
	// configured one keeps the process's own checkpoints.
	r := l.Relay
	local := r.Checkpoints
	r.Checkpoints = &groupCheckpoints{a: a, local: local, leader: l, log: log}
	defer func() { r.Checkpoints = local }()
	backoff := 200 * time.Millisecond
	for {
		err := r.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrFenced) {
			// The group moved on: the session is ending, and with it this
			// leadership. Publish nothing more.
			log.Warn("relay leadership fenced: the group rebalanced", "err", err)
			<-ctx.Done()
			return nil
		}
		l.setBrokerErr(err)
		log.Error("relay failed; restarting it", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

func (l *RelayLeader) readCheckpoint(ctx context.Context, a *Assignment) error {
	_, meta, ok, err := a.Committed(ctx, 0)
	if err != nil {
		return fmt.Errorf("read the relay group's checkpoint: %w", err)
	}
	if !ok || meta == "" {
		return nil
	}
	var cm checkpointMeta
	if err := json.Unmarshal([]byte(meta), &cm); err != nil {
		return fmt.Errorf("the relay group's checkpoint %q: %w", meta, err)
	}
	l.setCheckpoint(cm.Position)
	return nil
}

// groupCheckpoints keeps the relay's checkpoint in the group's committed
// offset metadata, fenced by the assignment's generation.
type groupCheckpoints struct {
	a      *Assignment
	local  relay.Checkpoints
	leader *RelayLeader
	log    *slog.Logger
}

func (g *groupCheckpoints) LoadCheckpoint(ctx context.Context, name string) (int64, error) {
	_, meta, ok, err := g.a.Committed(ctx, 0)
	if err != nil {
		return 0, fmt.Errorf("read the relay group's checkpoint: %w", err)
	}
	if ok && meta != "" {
		var cm checkpointMeta
		if err := json.Unmarshal([]byte(meta), &cm); err != nil {
			return 0, fmt.Errorf("the relay group's checkpoint %q: %w", meta, err)
		}
		g.leader.setCheckpoint(cm.Position)
		g.log.Info("relay resumes after the group's checkpoint", "position", cm.Position)
		return cm.Position, nil
	}
	p, err := g.local.LoadCheckpoint(ctx, name)
	if err != nil {
		return 0, err
	}
	g.log.Info("the relay group has no checkpoint yet: resuming after this process's own", "position", p)
	return p, nil
}

func (g *groupCheckpoints) SaveCheckpoint(ctx context.Context, name string, position int64) error {
	meta, _ := json.Marshal(checkpointMeta{Position: position})
	if err := g.a.Commit(ctx, 0, 0, string(meta)); err != nil {
		return fmt.Errorf("commit the relay checkpoint %d: %w", position, err)
	}
	g.leader.setCheckpoint(position)
	g.leader.setBrokerErr(nil)
	if err := g.local.SaveCheckpoint(ctx, name, position); err != nil {
		// Only the fallback: the group holds the checkpoint.
		g.log.Warn("save the relay checkpoint locally", "position", position, "err", err)
	}
	return nil
}
