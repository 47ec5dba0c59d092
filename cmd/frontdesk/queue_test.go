package main

import (
	"testing"

	"github.com/frontdesk-imds/frontdesk/internal/dataplane"
)

func TestSnapshotQueueMergesChangesUntilTaken(t *testing.T) {
	q := newSnapshotQueue()
	if s, _ := q.take(); s != nil {
		t.Fatal("an empty queue gave a snapshot")
	}
	a := &dataplane.Snapshot{Revision: 1, Changed: []string{"i-1"}}
	b := &dataplane.Snapshot{Revision: 2, Changed: []string{"i-2", "i-1"}}
	q.add(a)
	q.add(b)
	s, changed := q.take()
	if s != b || len(changed) != 2 {
		t.Fatalf("took revision %d with %v; want the newest and both changes", s.Revision, changed)
	}
	// A full load in between makes the next take "everything".
	q.add(&dataplane.Snapshot{Revision: 3, Changed: []string{"i-3"}})
	q.add(&dataplane.Snapshot{Revision: 4})
	q.add(&dataplane.Snapshot{Revision: 5, Changed: []string{"i-5"}})
	if s, changed := q.take(); s.Revision != 5 || changed != nil {
		t.Fatalf("after a full load: revision %d, changed %v; want 5 and nil (everything)", s.Revision, changed)
	}
	if s, _ := q.take(); s != nil {
		t.Fatal("a second take gave the same snapshot again")
	}
}
