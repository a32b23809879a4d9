// grpc-go anchor of `make fanout-compare` (perf/fanout_compare.py): the fan-out service of
// examples/fanout (helloworld.Greeter/SayHelloStream as a subscription, a bounded queue per
// subscriber, drop-oldest or disconnect when it is full) and the same SayHello commands as
// perf/fanout_server.cc, written the usual Go way: one goroutine per stream reading its own
// buffered channel, one publisher goroutine, GOMAXPROCS=2 to match our 2 shards.
// Usage: grpc-go-fanout-server [--port N] [--queue N] [--policy drop-oldest|disconnect]
// Prints "listening on PORT"; serves until stdin (a pipe) closes or SIGINT/SIGTERM.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "uringrpc/helloworldpb"
)

// One subscriber: the publisher sends on ch under hub.mu; its stream's goroutine receives.
type subscriber struct {
	ch         chan *string
	slot       int  // index in hub.subs, under hub.mu
	closed     bool // ch is closed; under hub.mu
	overflowed bool // written before close(ch), so read safely once ch reports closed
}

// The subscriber list and the slow-subscriber policy, as example::Hub.
type hub struct {
	mu           sync.Mutex
	subs         []*subscriber
	capacity     int
	dropOldest   bool
	dropped      uint64 // under mu
	disconnected uint64 // under mu
}

func (h *hub) subscribe() *subscriber {
	s := &subscriber{ch: make(chan *string, h.capacity)}
	h.mu.Lock()
	s.slot = len(h.subs)
	h.subs = append(h.subs, s)
	h.mu.Unlock()
	return s
}

func (h *hub) unsubscribe(s *subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	last := h.subs[len(h.subs)-1]
	h.subs[s.slot] = last
	last.slot = s.slot
	h.subs[len(h.subs)-1] = nil
	h.subs = h.subs[:len(h.subs)-1]
}

// Queues m for every subscriber without ever waiting for one.
func (h *hub) publish(m *string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.subs {
		if s.closed {
			continue
		}
		select {
		case s.ch <- m:
			continue
		default:
		}
		if h.dropOldest {
			// Only the publisher sends, so after taking one out the send cannot fail.
			select {
			case <-s.ch:
				h.dropped++
			default:
			}
			s.ch <- m
		} else {
			s.overflowed = true
			s.closed = true
			close(s.ch)
			h.disconnected++
		}
	}
}

func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.subs {
		if !s.closed {
			s.closed = true
			close(s.ch)
		}
	}
}

// How long the publisher took over its last "publish" job, in ms.
var lastJobMs int64

func (h *hub) stats() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprintf("subscribers %d dropped %d disconnected %d publish_ms %d", len(h.subs), h.dropped,
		h.disconnected, atomic.LoadInt64(&lastJobMs))
}

// A publisher job: count messages, one every interval; count 0 closes every subscription.
type job struct {
	count    uint64
	interval time.Duration
}

func monotonicNs() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err)
	}
	return ts.Nano()
}

// The publisher goroutine: every write to the hub comes from here, as in fanout_server.cc.
func publisher(h *hub, jobs <-chan job) {
	var seq uint64
	for j := range jobs {
		if j.count == 0 {
			h.closeAll()
			continue
		}
		start := time.Now()
		for i := uint64(0); i < j.count; i++ {
			if j.interval > 0 && i > 0 {
				time.Sleep(time.Until(start.Add(time.Duration(i) * j.interval)))
			}
			m := "m " + strconv.FormatUint(seq, 10) + " " + strconv.FormatInt(monotonicNs(), 10)
			seq++
			h.publish(&m)
		}
		atomic.StoreInt64(&lastJobMs, time.Since(start).Milliseconds())
	}
}

type fanoutServer struct {
	pb.UnimplementedGreeterServer
	hub  *hub
	jobs chan<- job
}

func (f *fanoutServer) SayHelloStream(_ *pb.HelloRequest, stream pb.Greeter_SayHelloStreamServer) error {
	s := f.hub.subscribe()
	defer f.hub.unsubscribe(s)
	done := stream.Context().Done()
	for {
		select {
		case m, ok := <-s.ch:
			if !ok {
				if s.overflowed {
					return status.Errorf(codes.ResourceExhausted,
						"subscriber too slow: more than %d messages queued", cap(s.ch))
				}
				return nil
			}
			if err := stream.Send(&pb.HelloReply{Message: *m}); err != nil {
				return err
			}
		case <-done:
			return stream.Context().Err()
		}
	}
}

func (f *fanoutServer) SayHello(_ context.Context, req *pb.HelloRequest) (*pb.HelloReply, error) {
	fields := strings.Fields(req.GetName())
	switch {
	case len(fields) == 3 && fields[0] == "publish":
		count, err1 := strconv.ParseUint(fields[1], 10, 64)
		us, err2 := strconv.ParseUint(fields[2], 10, 64)
		if err1 == nil && err2 == nil && count > 0 {
			f.jobs <- job{count, time.Duration(us) * time.Microsecond}
			return &pb.HelloReply{Message: "ok"}, nil
		}
	case len(fields) == 1 && fields[0] == "close":
		f.jobs <- job{}
		return &pb.HelloReply{Message: "ok"}, nil
	case len(fields) == 1 && fields[0] == "stats":
		return &pb.HelloReply{Message: f.hub.stats()}, nil
	}
	return nil, status.Error(codes.InvalidArgument, "commands: publish N U, stats, close")
}

func main() {
	port := flag.Int("port", 0, "TCP port on 127.0.0.1 (0: any free port)")
	queue := flag.Int("queue", 256, "messages queued per subscriber at most")
	policy := flag.String("policy", "disconnect", "a full queue: drop-oldest or disconnect")
	flag.Parse()
	if *port < 0 || *port > 65535 || *queue < 1 || (*policy != "drop-oldest" && *policy != "disconnect") {
		fmt.Fprintln(os.Stderr, "usage: grpc-go-fanout-server [--port N] [--queue N] [--policy drop-oldest|disconnect]")
		os.Exit(2)
	}
	// Two Ps for our two shards. An explicit GOMAXPROCS in the environment wins.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(2)
	}

	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	h := &hub{capacity: *queue, dropOldest: *policy == "drop-oldest"}
	jobs := make(chan job, 64)
	go publisher(h, jobs)
	s := grpc.NewServer()
	pb.RegisterGreeterServer(s, &fanoutServer{hub: h, jobs: jobs})

	stop := make(chan struct{}, 2)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-signals; stop <- struct{}{} }()
	if st, err := os.Stdin.Stat(); err == nil && st.Mode()&(os.ModeNamedPipe|os.ModeSocket) != 0 {
		go func() { io.Copy(io.Discard, os.Stdin); stop <- struct{}{} }()
	}
	stopped := make(chan struct{})
	go func() {
		<-stop
		jobs <- job{} // every subscription ends OK, then the server stops
		time.AfterFunc(5*time.Second, s.Stop)
		s.GracefulStop()
		close(stopped)
	}()

	fmt.Printf("listening on %d\n", lis.Addr().(*net.TCPAddr).Port)
	if err := s.Serve(lis); err != nil && err != grpc.ErrServerStopped {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	<-stopped // Serve returns as soon as stopping begins
}
