"""One module per instrument; each exports a single Instrument constant."""
