// asio-echo: the Asio peer of bench/compare, in the shape of Asio's
// async_tcp_echo_server example: a session reads into its own buffer (1024
// bytes, the example's max_length, unless a size is given) with
// async_read_some, writes that back with async_write (which finishes short
// writes itself), and only then reads again, so a peer that never reads is
// pushed back by TCP. On the peer's FIN (eof) nothing is owed any more (the
// last write completed before the read), and the session ends, closing the
// socket.
//
// Standalone Asio (Debian libasio-dev), no Boost. bench/CMakeLists.txt builds
// it twice: with Asio's default reactor (epoll) and with
// -DASIO_HAS_IO_URING -DASIO_DISABLE_EPOLL against liburing.
//
//   asio-echo PORT [BUFFER-SIZE]        listens on 127.0.0.1:PORT
#include <asio.hpp>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>
#include <vector>

using asio::ip::tcp;

namespace {

class Session : public std::enable_shared_from_this<Session> {
public:
  Session(tcp::socket socket, std::size_t size)
      : socket_(std::move(socket)), data_(size) {}

  void start() { read(); }

private:
  void read() {
    auto self = shared_from_this();
    socket_.async_read_some(asio::buffer(data_),
                            [this, self](std::error_code ec, std::size_t n) {
                              if (!ec)
                                write(n);
                            });
  }

  void write(std::size_t n) {
    auto self = shared_from_this();
    asio::async_write(socket_, asio::buffer(data_.data(), n),
                      [this, self](std::error_code ec, std::size_t) {
                        if (!ec)
                          read();
                      });
  }

  tcp::socket socket_;
  std::vector<char> data_;
};

class Server {
public:
  Server(asio::io_context &io, unsigned short port, std::size_t size)
      : acceptor_(io), size_(size) {
    tcp::endpoint ep(asio::ip::address_v4::loopback(), port);
    acceptor_.open(ep.protocol());
    acceptor_.set_option(tcp::acceptor::reuse_address(true));
    acceptor_.bind(ep);
    acceptor_.listen(4096);
    accept();
  }

private:
  void accept() {
    acceptor_.async_accept([this](std::error_code ec, tcp::socket socket) {
      if (!ec) {
        std::error_code ignored;
        socket.set_option(tcp::no_delay(true), ignored);
        std::make_shared<Session>(std::move(socket), size_)->start();
      }
      accept(); // a failed accept loses that connection, not the server
    });
  }

  tcp::acceptor acceptor_;
  std::size_t size_;
};

} // namespace

int main(int argc, char **argv) {
  int port = argc >= 2 ? std::atoi(argv[1]) : 0;
  long size = argc == 3 ? std::atol(argv[2]) : 1024;
  if (argc < 2 || argc > 3 || port <= 0 || port > 65535 || size < 1 || size > (1 << 24)) {
    std::fprintf(stderr, "usage: asio-echo PORT [BUFFER-SIZE]\n");
    return 64;
  }
  try {
    asio::io_context io(1);
    Server server(io, static_cast<unsigned short>(port), static_cast<std::size_t>(size));
    io.run();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "asio-echo: %s\n", e.what());
    return 1;
  }
  return 0;
}
