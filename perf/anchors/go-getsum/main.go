// grpc-go anchor of HttpArena's gRPC unary profile (perf/getsum_bench.py):
// benchmark.BenchmarkService/GetSum from perf/proto/benchmark.proto on Debian's grpc-go, with
// grpc.NewServer()'s defaults and GOMAXPROCS left to the runtime (one P per CPU of the
// process's affinity mask), as the profile's "default configuration" rule asks.
// Usage: getsum-grpc-go-server --port N; built by the Makefile (`make getsum-servers`).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"

	pb "uringrpc/getsumpb"
)

type server struct {
	pb.UnimplementedBenchmarkServiceServer
}

func (server) GetSum(_ context.Context, req *pb.SumRequest) (*pb.SumReply, error) {
	return &pb.SumReply{Result: req.A + req.B}, nil
}

func main() {
	port := flag.Int("port", -1, "TCP port on 127.0.0.1 (0: any free port)")
	flag.Parse()
	if *port < 0 || *port > 65535 {
		fmt.Fprintln(os.Stderr, "usage: getsum-grpc-go-server --port N")
		os.Exit(2)
	}
	// Loopback only, and the same address in every server of the benchmark.
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := grpc.NewServer()
	pb.RegisterBenchmarkServiceServer(s, server{})

	stop := make(chan struct{}, 2)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-signals; stop <- struct{}{} }()
	// A runner holding our stdin as a pipe stops us by closing it; /dev/null does not count.
	if st, err := os.Stdin.Stat(); err == nil && st.Mode()&(os.ModeNamedPipe|os.ModeSocket) != 0 {
		go func() { io.Copy(io.Discard, os.Stdin); stop <- struct{}{} }()
	}
	go func() { <-stop; s.Stop() }()

	fmt.Printf("listening on %d\n", lis.Addr().(*net.TCPAddr).Port) // stdout is unbuffered in Go
	if err := s.Serve(lis); err != nil && err != grpc.ErrServerStopped {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
