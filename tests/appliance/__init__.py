"""The appliance side: the PPS client (jobs.appliance), the inventory, the simulator (sim.pps)."""
