"""The files ``pt init`` writes, as text: a support assistant with two versions, a
conversational dataset, settings and a GitHub Actions workflow.

They must pass ``pt validate`` and ``pt run-tests --mock`` as written (tests/test_init.py
checks both). Under ``--mock`` the assistant quotes the user's message, the judge scores 70–100
and the simulated user ends after two exchanges; the evaluators are chosen to pass that
deterministically and to mean something against a real model: every opening message asks
about an order (the keyword), replies stay short (the length), and the judge's bar is 60.
"""

from __future__ import annotations

PROMPT_SLUG = "support_assistant"
DATASET_NAME = "support_conversations"
JUNIT_REPORT = "reports/prompttracker.xml"

SETTINGS = """\
# yaml-language-server: $schema=schemas/settings.schema.json
# PromptTracker project settings. Every key is optional; delete what you do not need.
# The schema comment above lets VS Code's YAML extension complete and check keys
# (regenerate the schemas after upgrading pt: `pt schema --all schemas`).

database: .prompttracker/results.db   # the results (SQLite), relative to this folder
concurrency: 4                        # test runs played at once

# The simulated user: an LLM playing each dataset row's persona.
interlocutor:
  provider: openai
  api: chat_completions
  model: gpt-4o-mini
  temperature: 0.7

# The LLM judges (llm_judge, conversation_judge): temperature 0, so verdicts repeat.
judge:
  provider: openai
  api: chat_completions
  model: gpt-4o-mini
  temperature: 0

# Keys are read from the environment, never from a file: OPENAI_API_KEY by default.
# providers:
#   openai:
#     base_url: http://localhost:8000/v1   # any OpenAI-compatible server (vLLM, Ollama, LM Studio)
#     api_key_env: OPENAI_API_KEY          # the NAME of the variable holding the key

# What undecided test runs do to the exit code (failures and errors always fail it).
# ci:
#   fail_on_invalid: false        # the simulated user broke down
#   fail_on_inconclusive: false   # a judge could not decide
"""

PROMPT = """\
# yaml-language-server: $schema=../schemas/prompt.schema.json
# A customer-support assistant for an online coffee shop, tested with simulated customers.
# The test plays both versions on the same rows: `pt runs show latest` compares them.
name: Support assistant
description: First-line support for an online store (orders, deliveries, returns, refunds)
versions:
  - version: 1
    status: deprecated
    system_prompt: |
      You are a customer support assistant for {{ company }}, an online store.
      Answer the customer's questions politely.
    user_prompt: "{{ opening_message }}"   # the customer's first message, from the dataset row
    variables:
      company: Northwind Coffee
    model_config:
      provider: openai
      api: chat_completions
      model: gpt-4o-mini
      temperature: 0.7
    notes: First draft; it knows no policy, so it promises things the shop does not do.

  - version: 2
    status: active
    system_prompt: |
      You are a customer support assistant for {{ company }}, an online store selling coffee
      beans and brewing equipment. Be brief, warm and concrete.
      Policies:
      - Damaged or missing items are replaced or refunded in full; the customer keeps them.
      - Unopened items can be returned within {{ return_days }} days of delivery.
      - Refunds reach the original payment method within 5 business days.
      - Never ask for card numbers or passwords: the order number is enough.
      Apologise once when something went wrong, then say exactly what happens next.
      When you cannot solve the problem, say that you are handing it to a colleague.
    user_prompt: "{{ opening_message }}"
    variables:
      company: Northwind Coffee
      return_days: 30
    model_config:
      provider: openai
      api: chat_completions
      model: gpt-4o-mini
      temperature: 0.3
      max_tokens: 400
    notes: Adds the shop's policies and a hand-off rule.

tests:
  - name: resolves common support requests
    dataset: support_conversations       # datasets/support_conversations.yaml
    versions: [1, 2]                     # default: the active version only
    tags: [support]
    evaluators:
      - type: keyword
        name: answers about the order
        turn: 1                          # the reply to the customer's first message
        config: { required_keywords: [order] }
      - type: length
        name: stays brief
        config: { min_length: 20, max_length: 1200 }
      - type: llm_judge
        name: helpful and polite
        config:
          threshold_score: 60
          custom_instructions: |
            Score 0-100. Does the reply address the customer's problem, stay polite, and say
            what happens next? Deduct points for invented policies or for asking for card
            numbers or passwords.
"""

DATASET = """\
# yaml-language-server: $schema=../schemas/dataset.schema.json
# Customers to simulate. Each row's variables fill the prompt's templates; the simulated user
# plays the persona for up to max_turns turns and may end the conversation sooner.
mode: conversational
description: Everyday support requests to an online coffee shop
rows:
  - name: damaged grinder
    variables:
      opening_message: "My order #4521 arrived with a cracked grinder lid. What can you do?"
    interlocutor_simulation_prompt: |
      You are a customer whose coffee grinder from order #4521 arrived with a cracked lid.
      You want a replacement quickly and you do not want to pay for shipping it back.
    max_turns: 4

  - name: late delivery
    variables:
      opening_message: "My order #4630 was due on Monday and still isn't here. Where is it?"
    interlocutor_simulation_prompt: |
      You are a polite but worried customer: order #4630, a birthday present, is three days late.
      You want to know where the parcel is and whether it will arrive before Saturday.
    max_turns: 4

  - name: wrong grind returned
    variables:
      opening_message: "Can I return an unopened bag from order #4702? I picked the wrong grind."
    interlocutor_simulation_prompt: |
      You are a customer who ordered espresso-ground beans (order #4702) but needed whole beans.
      The bag is unopened. You want to swap it rather than get a refund.
    max_turns: 4
"""

WORKFLOW = """\
# Validate the prompts and play the tests on every push and pull request.
# As written the run is offline (--mock: no key, no cost): it checks that the files load, the
# templates render for every row, and the evaluators run. For real verdicts, see the end.
name: PromptTracker

on:
  push:
    branches: [main]
  pull_request:

jobs:
  prompts:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4

      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"

      - name: Install pt
        # The version that wrote schemas/; upgrade both together (`pt schema --all schemas`).
        run: pip install "prompttracker=={version}"

      - name: Validate prompts and datasets
        run: pt validate

      - name: Run the tests
        run: pt run-tests --mock --junit-xml {junit}

      - name: Upload the JUnit report
        if: always()   # a failing run is the one whose report you want
        uses: actions/upload-artifact@v4
        with:
          name: prompttracker-junit
          path: {junit}

      # Real runs, two ways:
      #
      # 1. Call the models on every build: add your key as a repository secret (Settings →
      #    Secrets and variables → Actions → OPENAI_API_KEY) and replace "Run the tests" with
      #      - name: Run the tests
      #        run: pt run-tests --junit-xml {junit}
      #        env:
      #          OPENAI_API_KEY: ${{{{ secrets.OPENAI_API_KEY }}}}
      #
      # 2. Record once, replay on every build (no key, no cost, the same verdicts each time):
      #    run `pt run-tests --record cassettes` on your machine with the key set, commit
      #    cassettes/, and use
      #        run: pt run-tests --replay cassettes --junit-xml {junit}
      #    Record again when you change a prompt: a changed request has no recorded answer.
"""

GITIGNORE = """\
# PromptTracker: the results database and local state
.prompttracker/
"""
