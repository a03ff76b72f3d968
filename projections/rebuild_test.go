package projections_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/piperun/piperun/bench"
	"github.com/piperun/piperun/command"
	"github.com/piperun/piperun/domain"
	"github.com/piperun/piperun/eventstore"
	"github.com/piperun/piperun/eventstore/memory"
	"github.com/piperun/piperun/projections"
)

// dumpTables returns every row of every table of a read-model file, in
// key order, as text.
func dumpTables(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		tables = append(tables, name)
	}
	rows.Close()
	var out strings.Builder
	for _, table := range tables {
		query := `SELECT * FROM ` + table
		if table == "log_chunks" {
			// A line per row: how lines are grouped into rows depends on
			// how events were batched, what the lines are must not.
			query = `SELECT run, log, first + j.key, j.value FROM log_chunks, json_each(log_chunks.lines) AS j`
		}
		rows, err := db.Query(query)
		if err != nil {
			t.Fatal(err)
		}
		cols, err := rows.Columns()
		if err != nil {
			t.Fatal(err)
		}
		var lines []string
		for rows.Next() {
			vals := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range vals {
				ptrs[i] = &vals[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			var line strings.Builder
			for _, v := range vals {
				fmt.Fprintf(&line, "%T:%q ", v, v)
			}
			lines = append(lines, line.String())
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
		slices.Sort(lines)
		fmt.Fprintf(&out, "table %s %v: %d rows\n%s\n", table, cols, len(lines), strings.Join(lines, "\n"))
	}
	return out.String()
}

// applyInSteps applies the events after the projectors' checkpoint in
// batches of 1 to 7 events, each batch by the next projector in turn (they
// share a file, as two processes may).
func applyInSteps(t *testing.T, ctx context.Context, es eventstore.Store, projectors ...*projections.Store) {
	t.Helper()
	all, err := es.ReadAll(ctx, projectors[0].Position(), 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := 0, 1; len(all) > 0; i, n = i+1, n%7+1 {
		batch := all[:min(n, len(all))]
		all = all[len(batch):]
		if err := projectors[i%len(projectors)].ApplyBatch(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range projectors {
		if err := p.CatchUp(ctx, es); err != nil {
			t.Fatal(err)
		}
	}
}

// sharedProducts are products whose artifacts other runs' products also
// name (content-addressed files are shared). Job "big..." has hundreds.
func sharedProducts(job string) *domain.Products {
	p := &domain.Products{Figures: domain.Figures{NImages: 1}}
	p.Artifacts = []domain.Artifact{
		{Name: "measurements/a.parquet", Digest: "sha256:shared-a", Size: 10},
		{Name: "images.parquet", Digest: "sha256:images-" + job, Size: 5},
	}
	if strings.HasPrefix(job, "big") {
		for i := range 450 {
			name := fmt.Sprintf("measurements/%d.parquet", i)
			p.Artifacts = append(p.Artifacts, domain.Artifact{Name: name, Digest: "sha256:" + job + "-" + name, Size: 1})
		}
	}
	return p
}

// TestRebuildMatchesIncrementalProjection projects one log twice: in small
// batches as it is written, by two projectors sharing the file, and in a
// rebuild from scratch, and finds every table byte for byte the same. The
// log has interleaved run histories (processing, additions with backups,
// restores), users, and runs deleted and created again that take up the
// artifacts they used before.
//
// With hints, the incremental projectors take the states the command
// service has in memory instead of their read models where they can; the
// tables must still be the rebuild's, byte for byte.
func TestRebuildMatchesIncrementalProjection(t *testing.T) {
	for _, hints := range []bool{false, true} {
		t.Run(fmt.Sprintf("hints=%v", hints), func(t *testing.T) { testRebuildMatchesIncremental(t, hints) })
	}
}

func testRebuildMatchesIncremental(t *testing.T, hints bool) {
	ctx := context.Background()
	es := memory.New()
	svc := command.New(es)
	dir := t.TempDir()
	incPath := filepath.Join(dir, "incremental.db")
	a, b := openRead(t, incPath), openRead(t, incPath)
	if hints {
		a.Hints, b.Hints = svc, svc
	}

	if _, err := bench.WriteHistory(ctx, es, bench.HistoryOptions{Events: 1200, Writers: 6, Prefix: "a-"}); err != nil {
		t.Fatal(err)
	}
	applyInSteps(t, ctx, es, a, b)
	if _, err := svc.CreateUser(ctx, "alice", false, "test"); err != nil {
		t.Fatal(err)
	}

	alice := domain.Actor{Name: "alice"}
	process := func(run, job string) {
		t.Helper()
		res, err := svc.RequestProcessing(ctx, run, false, true, alice)
		if err != nil {
			t.Fatal(err)
		}
		writeLog(t, svc, run, res.Run.Job.Log, 2, 3)
		if _, err := svc.ExecRun(ctx, run, "worker", func(r *domain.Run) ([]domain.Event, error) {
			return append(r.StartProcessing(r.Job.ID), r.FinishProcessing(r.Job.ID, sharedProducts(job), nil)...), nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	deleteRun := func(run string) {
		t.Helper()
		if _, err := svc.RequestDeletion(ctx, run, alice); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.ExecRun(ctx, run, "worker", func(r *domain.Run) ([]domain.Event, error) { return r.FinishDeletion(), nil }); err != nil {
			t.Fatal(err)
		}
	}
	create := func(run string) {
		t.Helper()
		if _, err := svc.CreateRun(ctx, domain.CreateRun{Name: run, Config: testConfig("a"), Actor: alice}); err != nil {
			t.Fatal(err)
		}
	}
	// A run deleted and created again between batches, and one within a
	// batch, both taking up the same artifacts again.
	for _, run := range []string{"again", "within", "big"} {
		create(run)
		process(run, "1")
	}
	process("big", "big-1")
	applyInSteps(t, ctx, es, a, b)
	// One projector alone keeps its cached states from batch to batch.
	deleteRun("again")
	applyInSteps(t, ctx, es, a)
	process("big", "big-2") // hundreds of references go, hundreds come
	create("again")
	process("again", "1")
	deleteRun("within")
	create("within")
	process("within", "2")
	all, err := es.ReadAll(ctx, a.Position(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ApplyBatch(ctx, all); err != nil {
		t.Fatal(err)
	}
	// A deleted run stays deleted.
	create("gone")
	process("gone", "3")
	deleteRun("gone")
	if hints {
		// Projectors that hold no states yet (as after a restart), each
		// projecting right after a one-event command, take the states from
		// the hints: an addition with its backup, then a restore, whose
		// products (and artifact references) change.
		withImages := func(p *domain.Products, cfg domain.RunConfig) *domain.Products {
			for _, im := range cfg.Inputs.Images {
				p.Images = append(p.Images, domain.ImageSummary{Name: im, Path: im})
			}
			return p
		}
		exec := func(actor string, decide func(r *domain.Run) ([]domain.Event, error)) {
			t.Helper()
			if _, err := svc.ExecRun(ctx, "hinted", actor, decide); err != nil {
				t.Fatal(err)
			}
		}
		create("hinted")
		if _, err := svc.RequestProcessing(ctx, "hinted", false, false, alice); err != nil {
			t.Fatal(err)
		}
		exec("worker", func(r *domain.Run) ([]domain.Event, error) {
			return append(r.StartProcessing(r.Job.ID), r.FinishProcessing(r.Job.ID, withImages(sharedProducts("1"), r.Job.Config), nil)...), nil
		})
		applyInSteps(t, ctx, es, a)
		steps := []func(){
			func() {
				if _, err := svc.UpdateConfig(ctx, "hinted", testConfig("a", "h"), alice); err != nil {
					t.Fatal(err)
				}
			},
			func() {
				if _, err := svc.RequestProcessing(ctx, "hinted", false, false, alice); err != nil {
					t.Fatal(err)
				}
			},
			func() {
				exec("worker", func(r *domain.Run) ([]domain.Event, error) { return r.StartProcessing(r.Job.ID), nil })
			},
			func() {
				exec("worker", func(r *domain.Run) ([]domain.Event, error) {
					return r.FinishProcessing(r.Job.ID, withImages(sharedProducts("added"), r.Job.Config), nil), nil
				})
			},
			func() {
				if _, err := svc.RequestRestore(ctx, "hinted", false, alice); err != nil {
					t.Fatal(err)
				}
			},
			func() {
				exec("worker", func(r *domain.Run) ([]domain.Event, error) { return r.FinishRestore(r.Restore.ID, nil), nil })
			},
		}
		var seen int64
		for _, step := range steps {
			step()
			fresh := openRead(t, incPath)
			fresh.Hints = svc
			applyInSteps(t, ctx, es, fresh)
			seen += fresh.HintsUsed()
		}
		if seen != int64(len(steps)) {
			t.Errorf("fresh projectors took %d states from the hints, want %d", seen, len(steps))
		}
		if r, err := svc.LoadRun(ctx, "hinted"); err != nil || r.Status != domain.StatusCompleted || r.Backup != nil ||
			r.Products == nil || !slices.ContainsFunc(r.Products.Artifacts, func(a domain.Artifact) bool { return a.Digest == "sha256:images-1" }) {
			t.Fatalf("run hinted was not restored: %+v, %v", r.Products, err)
		}
	}
	if _, err := bench.WriteHistory(ctx, es, bench.HistoryOptions{Events: 800, Writers: 5, Prefix: "b-"}); err != nil {
		t.Fatal(err)
	}
	applyInSteps(t, ctx, es, b, a)

	rebuiltPath := filepath.Join(dir, "rebuilt.db")
	rebuilt := openRead(t, rebuiltPath)
	if err := rebuilt.CatchUp(ctx, es); err != nil {
		t.Fatal(err)
	}
	if rebuilt.Position() != a.Position() {
		t.Fatalf("rebuilt to %d, incremental at %d", rebuilt.Position(), a.Position())
	}
	inc, reb := dumpTables(t, incPath), dumpTables(t, rebuiltPath)
	if inc != reb {
		il, rl := strings.Split(inc, "\n"), strings.Split(reb, "\n")
		for i := range min(len(il), len(rl)) {
			if il[i] != rl[i] {
				t.Fatalf("tables differ at line %d:\nincremental %s\nrebuilt     %s", i+1, il[i], rl[i])
			}
		}
		t.Fatalf("tables differ: %d lines incremental, %d rebuilt", len(il), len(rl))
	}

	// The artifact index is what the runs' states say.
	states, err := rebuilt.ListRunStates(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, r := range states {
		var ps []*domain.Products
		if r.Products != nil {
			ps = append(ps, r.Products)
		}
		if r.Backup != nil {
			ps = append(ps, &r.Backup.Products)
		}
		for _, p := range ps {
			for _, art := range p.Artifacts {
				want = append(want, art.Digest+" "+r.Name)
			}
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	if !slices.Contains(want, "sha256:shared-a again") || !slices.Contains(want, "sha256:shared-a within") {
		t.Fatalf("the re-created runs do not use the shared artifact: %q", want)
	}
	for _, r := range states {
		if r.Name == "gone" {
			t.Fatal("deleted run in the read models")
		}
	}
	db, err := sql.Open("sqlite", "file:"+rebuiltPath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT digest || ' ' || run FROM artifact_refs ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var got []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("artifact_refs has %d rows, the states name %d:\n%q\n%q", len(got), len(want), got, want)
	}
}
