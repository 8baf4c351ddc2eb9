// Lets @modelcontextprotocol/conformance (built for Node >= 22) run on Node 20.
// Loaded with `node --import` by tests/interop/conformance only when Node is older than 22: it redirects the
// suite's `fs` import to node20-fs.mjs, which adds the one missing export (fs.globSync, Node 22+).
import { register } from 'node:module';

register('./node20-fs-hooks.mjs', import.meta.url);
