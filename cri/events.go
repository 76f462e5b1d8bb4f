package cri

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// GetContainerEvents follows the tree's root `events` file: each subscriber
// opens it for itself and reads what happens from then on, in order. The
// events of the CRI's objects become the CRI's: create is
// CONTAINER_CREATED, start CONTAINER_STARTED, the exit of init
// CONTAINER_STOPPED, delete CONTAINER_DELETED. A sandbox's own events name
// the sandbox as the container, as containerd's do. Each carries the pod's
// sandbox status and its containers' statuses as they read when the event
// is handled (what the kubelet's evented PLEG caches).
//
// Go's os.File registers the events file with the runtime's poller and
// reads it non-blocking (the tree answers EAGAIN and wakes the poller), so
// a subscriber costs no thread, and closing the file ends its read when
// the client goes.
func (s *Server) GetContainerEvents(req *runtimeapi.GetEventsRequest, stream grpc.ServerStreamingServer[runtimeapi.ContainerEventResponse]) error {
	f, err := os.Open(s.t.path("events"))
	if err != nil {
		return treeStatus("events", err)
	}
	ctx := stream.Context()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		f.Close()
	}()
	w := eventWatcher{s: s, sandboxes: map[string]*runtimeapi.PodSandboxStatus{}, pods: map[string]string{}}
	// What a delete needs once the object is gone: its kind, its pod.
	for _, o := range s.objects("") {
		w.remember(o)
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var ev treeEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			s.log.WithError(err).Warn("events: a line that is not JSON")
			continue
		}
		resp := w.translate(ev)
		if resp == nil {
			continue
		}
		if err := stream.Send(resp); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil && !errors.Is(err, os.ErrClosed) {
		return status.Errorf(codes.Unavailable, "events: %v", err)
	}
	return status.Error(codes.Unavailable, "events: the tree's events file ended (the daemon went away)")
}

// treeEvent is the part of an event line of the tree the CRI uses.
type treeEvent struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	ID      string    `json:"id"`
	Process string    `json:"process"`
	Dropped int       `json:"dropped"`
}

// eventWatcher is one subscriber's memory of the CRI objects it has seen.
type eventWatcher struct {
	s *Server
	// sandboxes: the last status sent of each sandbox, sent again (not
	// ready) with its delete, when it can no longer be read.
	sandboxes map[string]*runtimeapi.PodSandboxStatus
	// pods: each container's sandbox.
	pods map[string]string
}

func (w *eventWatcher) remember(o object) {
	if o.M.Kind == "sandbox" {
		if _, ok := w.sandboxes[o.ID]; !ok {
			w.sandboxes[o.ID] = nil
		}
	} else {
		w.pods[o.ID] = o.M.Pod
	}
}

var criEventTypes = map[string]runtimeapi.ContainerEventType{
	"create": runtimeapi.ContainerEventType_CONTAINER_CREATED_EVENT,
	"start":  runtimeapi.ContainerEventType_CONTAINER_STARTED_EVENT,
	"exit":   runtimeapi.ContainerEventType_CONTAINER_STOPPED_EVENT,
	"delete": runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT,
}

// translate is the CRI event of a tree event, or nil when it is none (not
// a CRI object's, not one of the four, an exec's exit).
func (w *eventWatcher) translate(ev treeEvent) *runtimeapi.ContainerEventResponse {
	if ev.Type == "overflow" {
		w.s.log.WithField("dropped", ev.Dropped).Warn("events: this subscriber read too slowly and lost events")
		return nil
	}
	typ, ok := criEventTypes[ev.Type]
	if !ok || ev.ID == "" || (ev.Type == "exit" && ev.Process != "init") {
		return nil
	}
	if o, err := w.s.object(ev.ID); err == nil {
		w.remember(o)
	}
	_, isSandbox := w.sandboxes[ev.ID]
	pod := ev.ID
	if !isSandbox {
		if pod, ok = w.pods[ev.ID]; !ok {
			return nil // not a CRI object, or gone before it could be read
		}
	}
	resp := &runtimeapi.ContainerEventResponse{ContainerId: ev.ID, ContainerEventType: typ, CreatedAt: ev.Time.UnixNano()}
	if st, err := w.s.PodSandboxStatus(context.Background(), &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod}); err == nil {
		resp.PodSandboxStatus, resp.ContainersStatuses = st.Status, st.ContainersStatuses
		w.sandboxes[pod] = st.Status
	} else if last := w.sandboxes[pod]; last != nil {
		gone := proto.Clone(last).(*runtimeapi.PodSandboxStatus)
		gone.State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
		resp.PodSandboxStatus = gone
	}
	if typ == runtimeapi.ContainerEventType_CONTAINER_DELETED_EVENT {
		if isSandbox {
			delete(w.sandboxes, ev.ID)
		}
		delete(w.pods, ev.ID)
	}
	return resp
}
