"""The cluster view: siblings compared, each node against its own history, the mesh in rounds."""
