// Generates with node-llama-cpp and calls process.exit() in the middle of the generation, from
// the callback of its 20th piece: the main thread exits while the addon's thread decodes.
//   node exit-mid.mjs MODEL PROMPT
import { getLlama, LlamaCompletion } from "node-llama-cpp";

const [modelPath, prompt] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath });
const context = await model.createContext({ contextSize: 2048, threads: 2 });
const completion = new LlamaCompletion({ contextSequence: context.getSequence() });
let pieces = 0;
await completion.generateCompletion(prompt, {
    maxTokens: 1500, temperature: 0,
    onTextChunk(text) {
        process.stdout.write(text);
        if (++pieces === 20) process.exit(0);
    },
});
process.exit(3); // never: the generation is 1,500 tokens long
