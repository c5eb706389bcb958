"""The network: its config, layers, ConvLSTM, encoder, latent hierarchy, decoder, the VRNN and its losses."""
