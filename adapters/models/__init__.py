"""Model clients: VLM taggers and multimodal embedders (DashScope, PAI-EAS GME, offline local)."""
