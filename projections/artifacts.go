// Artifact references: which run uses which artifact, for the janitor.

package projections

import (
	"context"
	"database/sql"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/statecodec"
)

// fillArtifactRefs builds artifact_refs from the runs' states.
func fillArtifactRefs(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT name, state FROM runs`)
	if err != nil {
		return err
	}
	refs := map[string][]string{}
	for rows.Next() {
		var name string
		var state []byte
		if err := rows.Scan(&name, &state); err != nil {
			rows.Close()
			return err
		}
		var r domain.Run
		if err := statecodec.DecodeState(state, &r); err != nil {
			rows.Close()
			return fmt.Errorf("decode run %s: %w", name, err)
		}
		refs[name] = referencedDigests(&r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for name, digests := range refs {
		for _, d := range digests {
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO artifact_refs (digest, run) VALUES (?, ?)`, d, name); err != nil {
				return err
			}
		}
	}
	return nil
}

// referencedDigests lists the artifacts a run's state uses: its products
// and its backup's.
func referencedDigests(r *domain.Run) []string {
	var out []string
	if r.Products != nil {
		for _, a := range r.Products.Artifacts {
			out = append(out, a.Digest)
		}
	}
	if r.Backup != nil {
		for _, a := range r.Backup.Products.Artifacts {
			out = append(out, a.Digest)
		}
	}
	return out
}

// artifactRefs returns the artifacts artifact_refs holds for run name.
func (b *batchWriter) artifactRefs(ctx context.Context, name string) ([]string, error) {
	st, err := b.stmt(ctx, `SELECT digest FROM artifact_refs WHERE run = ?`)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("read artifact references of run %s: %w", name, err)
	}
	var refs []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read artifact references of run %s: %w", name, err)
		}
		refs = append(refs, d)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("read artifact references of run %s: %w", name, err)
	}
	return refs, nil
}

// updateRefs brings run's rows of artifact_refs from the artifacts it used
// before the batch to those r uses, touching only the rows that change
// (the digests are random keys: rewriting every row of every touched run
// dirtied pages all over the table), many rows per statement.
func (b *batchWriter) updateRefs(ctx context.Context, run string, r *domain.Run) error {
	now := referencedDigests(r)
	if slices.Equal(b.refs[run], now) {
		return nil // most events change no artifact: nothing to compare
	}
	before, after := digestSet(b.refs[run]), digestSet(now)
	var gone, added []any
	for _, d := range slices.Sorted(maps.Keys(before)) {
		if !after[d] {
			gone = append(gone, d)
		}
	}
	for _, d := range slices.Sorted(maps.Keys(after)) {
		if !before[d] {
			added = append(added, d)
		}
	}
	for chunk := range slices.Chunk(gone, refsPerStatement) {
		query := `DELETE FROM artifact_refs WHERE run = ? AND digest IN (?` + strings.Repeat(`, ?`, len(chunk)-1) + `)`
		if err := b.exec(ctx, query, append([]any{run}, chunk...)...); err != nil {
			return err
		}
	}
	for chunk := range slices.Chunk(added, refsPerStatement) {
		query := `INSERT OR IGNORE INTO artifact_refs (digest, run) VALUES (?, ?)` + strings.Repeat(`, (?, ?)`, len(chunk)-1)
		args := make([]any, 0, 2*len(chunk))
		for _, d := range chunk {
			args = append(args, d, run)
		}
		if err := b.exec(ctx, query, args...); err != nil {
			return err
		}
	}
	return nil
}

func digestSet(digests []string) map[string]bool {
	set := make(map[string]bool, len(digests))
	for _, d := range digests {
		set[d] = true
	}
	return set
}

// refsPerStatement bounds the rows of artifact_refs one statement writes,
// well under SQLite's limit on parameters.
const refsPerStatement = 200

// ArtifactUse reports which of digests a run other than except uses (in its
// products or its backup), and whether any run has a processing job queued
// or running. It reads an index, not the runs' states.
func (s *Store) ArtifactUse(ctx context.Context, digests []string, except string) (used map[string]bool, pendingJob bool, err error) {
	// The literals match the partial index runs_pending (bound parameters
	// would not let SQLite use it).
	if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM runs WHERE status IN ('Queued', 'Running'))`).Scan(&pendingJob); err != nil {
		return nil, false, fmt.Errorf("look for pending jobs: %w", err)
	}
	used = map[string]bool{}
	for _, d := range digests {
		// EXISTS stops at the first other run: a product shared by many
		// runs must not cost a count of them all.
		var inUse bool
		if err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM artifact_refs WHERE digest = ? AND run != ?)`, d, except).Scan(&inUse); err != nil {
			return nil, false, fmt.Errorf("look up uses of %s: %w", d, err)
		}
		if inUse {
			used[d] = true
		}
	}
	return used, pendingJob, nil
}
