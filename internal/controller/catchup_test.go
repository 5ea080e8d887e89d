package controller

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	sessionsv1alpha1 "github.com/tidal-mcp/tidal-session-operator/api/v1alpha1"
)

func sessionDue(name string, next *time.Time) *sessionsv1alpha1.TidalSession {
	s := newSession()
	s.Name = name
	if next != nil {
		s.Status.NextRefreshTime = &metav1.Time{Time: *next}
	}
	return s
}

func TestCatchUpPriority(t *testing.T) {
	at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	tests := []struct {
		name string
		next *time.Time
		want int
	}{
		{"not due", at(time.Minute), handler.LowPriority},
		{"new session", nil, 0},
		{"due now", at(0), 1},
		{"overdue by an hour", at(-time.Hour), 3601},
		{"overdue by ten years", at(-10 * 365 * 24 * time.Hour), 1 + maxCatchUpPriority},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := catchUpPriority(sessionDue("s", tt.next), t0); got != tt.want {
				t.Errorf("catchUpPriority = %d, want %d", got, tt.want)
			}
		})
	}
}

// After a restart, the initial list is worked off earliest deadline first.
func TestInitialListIsCaughtUpEarliestDeadlineFirst(t *testing.T) {
	f := newFixture(t)
	q := priorityqueue.New[reconcile.Request]("test")
	defer q.ShutDown()
	at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	sessions := []*sessionsv1alpha1.TidalSession{
		sessionDue("not-due", at(time.Hour)),
		sessionDue("overdue-1m", at(-time.Minute)),
		sessionDue("new", nil),
		sessionDue("overdue-1h", at(-time.Hour)),
		sessionDue("overdue-10s", at(-10*time.Second)),
	}
	h := f.r.sessionEvents()
	for _, s := range sessions {
		h.Create(context.Background(), event.TypedCreateEvent[client.Object]{Object: s, IsInInitialList: true}, q)
	}
	var order []string
	for range sessions {
		item, _, _ := q.GetWithPriority()
		order = append(order, item.Name)
		q.Done(item)
	}
	want := []string{"overdue-1h", "overdue-1m", "overdue-10s", "new", "not-due"}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("order %v, want %v", order, want)
		}
	}
}
