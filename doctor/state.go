package doctor

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kubeplan/kubeplan/store"
)

// checkState opens the state store and checks that it takes writes. A SQLite file that does not
// exist yet is not created: its directory must be writable.
func checkState(ctx context.Context, location string) Result {
	const subject = "state"
	fix := "point state (KUBEPLAN_STATE, --state) at a writable file or a reachable PostgreSQL database"
	name := location
	if store.IsPostgres(location) {
		name = "PostgreSQL"
	} else if _, err := os.Stat(location); errors.Is(err, fs.ErrNotExist) {
		dir := filepath.Dir(location)
		f, err := os.CreateTemp(dir, ".kubeplan-doctor-*")
		if err != nil {
			return fail(subject, fix, "the SQLite file %s does not exist and its directory does not take new files: %v", location, err)
		}
		f.Close()
		os.Remove(f.Name())
		return ok(subject, "the SQLite file %s will be created at the first start (its directory is writable)", location)
	}
	q, err := store.Open(ctx, location)
	if err != nil {
		return fail(subject, fix, "%v", err)
	}
	defer q.Close()
	if err := q.Writable(ctx); err != nil {
		return fail(subject, fix, "%s: %v", name, err)
	}
	return ok(subject, "%s opens and takes writes", name)
}
