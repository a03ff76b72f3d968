package projections

import (
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/piperun/piperun/internal/sqlitewal"
	"github.com/piperun/piperun/internal/unsynced"
)

// ErrNotFound is returned for an unknown run, log or user.
var ErrNotFound = errors.New("not found")

const checkpointName = "read-models"

// maxCachedStates bounds the run states the projector keeps between
// batches (some kilobytes to tens of kilobytes each).
var maxCachedStates = 16384

// Change tells subscribers that a run's read model changed.
type Change struct {
	Run      string
	Position int64
}

// Store is the read-model database and its projector.
type Store struct {
	db   *sql.DB
	path string
	// ckpt copies committed pages of the WAL into the database file in the
	// background, on ckptDB.
	ckpt   *sqlitewal.Checkpointer
	ckptDB *sql.DB
	// guard, held while the file is open, lets it be written without
	// syncs (see Open).
	guard     *unsynced.Guard
	discarded bool

	// Hints, if set before the projector starts, saves it reading and
	// decoding the read model of a run whose new state the command side
	// has in memory.
	Hints     StateHints
	hintsUsed atomic.Int64

	// prepared are the batches' statements, prepared once per connection
	// rather than once per batch (compiling them was ~2 % of the CPU of a
	// command under load). Bounded: the queries with a variable number of
	// parameters come in at most refsPerStatement and chunksPerInsert sizes.
	prepMu   sync.Mutex
	prepared map[string]*sql.Stmt

	// usersGen changes whenever a user's token may have changed in the
	// read models: when this store applied a revocation or rotation, or
	// found events applied by another process sharing the file. Token
	// caches forget what they resolved under an older value.
	usersGen atomic.Int64

	mu sync.Mutex
	// position is read without mu by WaitFor, which every command calls.
	position atomic.Int64
	// waiters are WaitFor's callers, by the position each waits for
	// (under mu): advance wakes only those it reaches. (Waking every
	// caller at every batch, as a closed channel does, cost a wake-up and
	// a lock per waiting command per batch under load.)
	waiters waitHeap
	subs    map[int]chan Change
	nextSub int
	// cache holds run states as of position in their binary form
	// (statecodec.EncodeState), pointer-free: a rebuild keeps thousands of
	// them, which the garbage collector would otherwise mark on every
	// cycle. A batch decodes a run's state once, when it first touches it.
	cache map[string][]byte
	// seqs caches the last line number of each log of a run, so that
	// appending lines needs no query. Like cache, it holds only what the
	// database holds as of position.
	seqs    map[string]*logSeqs
	applyMu sync.Mutex // one projector at a time
}

// logSeqs are the last line numbers of a run's logs (log -> seq). When
// complete, every log of the run with lines in the database is there, and
// a log that is not has none: so it is for a run the read models did not
// hold (a run's lines go when its row goes) or whose lines were cleared.
type logSeqs struct {
	last     map[string]int64
	complete bool
}
