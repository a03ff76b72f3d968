package domaintest

import (
	"errors"
	"testing"
	"time"

	"github.com/piperun/piperun/domain"
)

// Stream stands in for the event store: it records decided events with
// consecutive versions and increasing times, and folds them into the run.
// Its methods fail the test when a command is refused or a report ignored.
type Stream struct {
	// T is the test the stream fails.
	T testing.TB
	// Run is the state folded from Recs.
	Run domain.Run
	// Recs are the recorded events, oldest first.
	Recs []domain.Recorded
	// Now is the time of the last recorded event.
	Now time.Time
}

// NewStream returns an empty stream whose first event happens a second
// after noon on 2024-05-01 UTC.
func NewStream(t testing.TB) *Stream {
	return &Stream{T: t, Now: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
}

// Happened records events, decided or hand-built, as the actor's.
func (s *Stream) Happened(actor domain.Actor, events ...domain.Event) {
	for _, e := range events {
		s.Now = s.Now.Add(time.Second)
		rec := domain.Recorded{Version: int64(len(s.Recs)) + 1, Time: s.Now, Actor: actor.Name, Event: e}
		s.Recs = append(s.Recs, rec)
		s.Run.Apply(rec)
	}
}

// Accepted records the events of a command of Alice's that must be accepted.
func (s *Stream) Accepted(events []domain.Event, err error) {
	s.T.Helper()
	if err != nil {
		s.T.Fatalf("command refused: %v", err)
	}
	if len(events) == 0 {
		s.T.Fatal("command accepted without events")
	}
	s.Happened(Alice, events...)
}

// Reported records the events of a worker's report that must not be ignored.
func (s *Stream) Reported(events []domain.Event) {
	s.T.Helper()
	if len(events) == 0 {
		s.T.Fatal("worker report ignored")
	}
	s.Happened(Worker, events...)
}

// Version is the version of the last recorded event.
func (s *Stream) Version() int64 { return int64(len(s.Recs)) }

// Create creates the run RunName with the configuration, as Alice.
func (s *Stream) Create(cfg domain.RunConfig) {
	s.T.Helper()
	s.Accepted(s.Run.Create(domain.CreateRun{Name: RunName, Description: "VAST pilot survey", Config: cfg, Actor: Alice}))
}

// Configure replaces the run's configuration, as Alice.
func (s *Stream) Configure(cfg domain.RunConfig) {
	s.T.Helper()
	s.Accepted(s.Run.UpdateConfig(cfg, Alice))
}

// RequestProcessing asks, as Alice, for the job to process the run (an
// addition where the run allows one).
func (s *Stream) RequestProcessing(jobID string) {
	s.T.Helper()
	s.Accepted(s.Run.RequestProcessing(Processing(jobID, false, Alice)))
}

// RequestFullRerun asks, as Alice, for the job to process the whole run
// again.
func (s *Stream) RequestFullRerun(jobID string) {
	s.T.Helper()
	s.Accepted(s.Run.RequestProcessing(Processing(jobID, true, Alice)))
}

// Start reports that the worker started the job.
func (s *Stream) Start(jobID string) {
	s.T.Helper()
	s.Reported(s.Run.StartProcessing(jobID))
}

// Complete reports that the job finished with the products.
func (s *Stream) Complete(jobID string, p domain.Products) {
	s.T.Helper()
	s.Reported(s.Run.FinishProcessing(jobID, &p, nil))
}

// Fail reports that the job failed.
func (s *Stream) Fail(jobID string) {
	s.T.Helper()
	s.Reported(s.Run.FinishProcessing(jobID, nil, errors.New("selavy catalogue unreadable")))
}

// Process runs a job from request to completion.
func (s *Stream) Process(jobID string, p domain.Products) {
	s.T.Helper()
	s.RequestProcessing(jobID)
	s.Start(jobID)
	s.Complete(jobID, p)
}

// RequestRestore asks, as Alice, for the run to be restored from its
// backup.
func (s *Stream) RequestRestore(requestID string) {
	s.T.Helper()
	s.Accepted(s.Run.RequestRestore(Restoring(requestID, Alice)))
}

// Restore runs a restore from request to success.
func (s *Stream) Restore(requestID string) {
	s.T.Helper()
	s.RequestRestore(requestID)
	s.Reported(s.Run.FinishRestore(requestID, nil))
}

// Delete deletes the run, from Alice's request to the worker's report.
func (s *Stream) Delete() {
	s.T.Helper()
	s.Accepted(s.Run.RequestDeletion(Alice))
	s.Reported(s.Run.FinishDeletion())
}
