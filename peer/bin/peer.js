#!/usr/bin/env -S node --max-semi-space-size=1
// A 1 MiB young generation: file bytes arrive in buffers that die young, and are freed (not left
// to pile up until an external-memory limit forces a full collection). Peak RSS of a download: -30 MiB.
import { main } from '../src/cli/main.ts'

await main(process.argv)
