import { Command } from 'commander';
import { registerDsmCommand } from '../../src/cli/dsm.ts';

// The dsm subcommands alone, as the lazarus CLI mounts them, for the CLI tests.
const program = new Command('lazarus');
registerDsmCommand(program);
await program.parseAsync(process.argv);
