// Placeholder until the hook runner lands; replaced by the first real file.
