// grpc-go anchor of the benchmark (perf/): the same four grpc.testing.TestService methods and
// the same work per call as perf/bench_server.cc, on Debian's grpc-go, GOMAXPROCS=1.
// Usage: grpc-go-server --port N [--tls-cert FILE --tls-key FILE]; built by the Makefile.
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
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	pb "uringrpc/benchpb"
)

type server struct {
	pb.UnimplementedTestServiceServer
}

// Every server in the benchmark fills payloads the same way: `size` zero bytes.
func payload(size int32) *pb.Payload {
	if size < 0 {
		size = 0
	}
	return &pb.Payload{Body: make([]byte, size)}
}

func (server) EmptyCall(context.Context, *pb.Empty) (*pb.Empty, error) {
	return &pb.Empty{}, nil
}

// response_type is ignored (COMPRESSABLE is the only type the proto still defines).
func (server) UnaryCall(_ context.Context, req *pb.SimpleRequest) (*pb.SimpleResponse, error) {
	return &pb.SimpleResponse{Payload: payload(req.ResponseSize)}, nil
}

// One message per response_parameters entry, of that entry's size; interval_us is ignored
// by every server in the benchmark (the scenarios send 0).
func (server) StreamingOutputCall(req *pb.StreamingOutputCallRequest,
	stream pb.TestService_StreamingOutputCallServer) error {
	for _, p := range req.ResponseParameters {
		if err := stream.Send(&pb.StreamingOutputCallResponse{Payload: payload(p.Size)}); err != nil {
			return err
		}
	}
	return nil
}

func (server) StreamingInputCall(stream pb.TestService_StreamingInputCallServer) error {
	var total int64
	for {
		req, err := stream.Recv()
		if err == io.EOF {
			return stream.SendAndClose(&pb.StreamingInputCallResponse{AggregatedPayloadSize: int32(total)})
		}
		if err != nil {
			return err
		}
		total += int64(len(req.GetPayload().GetBody()))
	}
}

func main() {
	port := flag.Int("port", -1, "TCP port on 127.0.0.1 (0: any free port)")
	tlsCert := flag.String("tls-cert", "", "PEM certificate chain: serve TLS instead of h2c")
	tlsKey := flag.String("tls-key", "", "PEM private key for --tls-cert")
	flag.Parse()
	if *port < 0 || *port > 65535 || (*tlsCert == "") != (*tlsKey == "") {
		fmt.Fprintln(os.Stderr, "usage: grpc-go-server --port N [--tls-cert FILE --tls-key FILE]")
		os.Exit(2)
	}
	// One P: the benchmark pins the server to one core. An explicit GOMAXPROCS in the
	// environment wins, so a user can try more.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}

	var opts []grpc.ServerOption
	if *tlsCert != "" {
		creds, err := credentials.NewServerTLSFromFile(*tlsCert, *tlsKey)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		opts = append(opts, grpc.Creds(creds))
	}
	// Loopback only, and the same address in every server of the benchmark.
	lis, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", *port))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s := grpc.NewServer(opts...)
	pb.RegisterTestServiceServer(s, server{})

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
