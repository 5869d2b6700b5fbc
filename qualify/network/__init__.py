"""Network testing shared by the network and nic_health checks: the peer's iperf3 server, the
cross-process lock that runs one link test at a time, the node's links, and the mesh view."""
