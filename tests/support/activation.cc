#include "activation.h"

#include <fcntl.h>

#include "fixture.h"
#include "udp.h"

namespace e2e
{

bool MakeSockets(const std::vector<std::string> &specs, std::vector<Fd> *fds,
		 std::vector<std::string> *launch, std::string *error, std::vector<int> *ports)
{
	for (const std::string &spec : specs) {
		size_t eq = spec.find('=');
		std::string proto = spec.substr(0, eq), name;
		int port = 0;
		if (eq != std::string::npos)
			name = ":" + spec.substr(eq + 1);
		Fd fd =
		    proto == "udp" ? UdpSocket(kLoopback, 0, error) : ListenTcp(kLoopback, &port);
		if (!fd.valid() || fcntl(fd.get(), F_SETFD, 0) < 0) {
			*error = "cannot make the socket for " + spec + ": " + *error;
			return false;
		}
		launch->push_back("-f");
		launch->push_back(std::to_string(fd.get()) + name);
		if (ports != nullptr)
			ports->push_back(port);
		fds->push_back(std::move(fd));
	}
	return true;
}

std::unique_ptr<Daemon> StartActivated(const std::string &backend,
				       const std::vector<std::string> &specs, std::string *error,
				       const std::vector<std::string> &extra, int listeners,
				       std::vector<int> *ports)
{
	std::vector<Fd> fds;
	std::vector<std::string> wrapper = {SD_LAUNCH_BIN};
	if (!MakeSockets(specs, &fds, &wrapper, error, ports))
		return nullptr;
	wrapper.push_back("--");
	std::vector<std::string> args = BackendArgs(backend);
	args.insert(args.end(), {"-w", "2"});
	args.insert(args.end(), extra.begin(), extra.end());
	auto d = std::make_unique<Daemon>();
	if (!d->StartWrapped(wrapper, args, listeners < 0 ? int(specs.size()) : listeners, error))
		return nullptr;
	return d;
}

} // namespace e2e
