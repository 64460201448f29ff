//! The configuration model (one struct tree) and its readers (Mosquitto-style conf; defaults).
