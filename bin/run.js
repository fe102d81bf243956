#!/usr/bin/env node
// The `mirror` command: runs the compiled oclif commands in dist/.
import { execute } from '@oclif/core';

await execute({ dir: import.meta.url });
