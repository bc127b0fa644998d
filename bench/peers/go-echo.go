// go-echo: an echo server on Go's net package, one goroutine per connection,
// as Go programs are written. It loops over Read and Write with its own buffer
// rather than io.Copy(c, c): on Linux that would splice through a pipe that each
// waiting connection keeps (three descriptors per connection, so 10 000 idle
// connections would not fit under a 20 000 descriptor limit).
//
//	go-echo PORT        listens on 127.0.0.1:PORT
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 16<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // io.EOF: everything read was written back; close
		}
	}
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: go-echo PORT")
		os.Exit(64)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-echo:", err)
		os.Exit(71)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: back off
			continue
		}
		go serve(c)
	}
}
