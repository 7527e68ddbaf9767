/**
 * Bundled case files for the Hollowell Asylum typing game.
 *
 * These are the stories the fake Anthropic server (scripts/fakes/anthropicServer.ts)
 * answers with, and they double as seed / demo content. Each one has exactly the
 * shape of the structured output (or `record_case_file` tool input) that Claude is asked to produce:
 * 8 chapters (4 easy, 2 medium, 2 hard, in that order: the default
 * STORY_CHAPTER_PLAN), a kebab-case slug, a
 * "P-0000"-style patient number and a portrait prompt under 1000 UTF-8 bytes.
 *
 * All text is plain ASCII (straight quotes, no dashes or ellipsis characters)
 * so that every chapter can be typed on an ordinary keyboard.
 */

export type CaseFileDifficulty = "easy" | "medium" | "hard";

type CaseFileChapter = {
  text: string;
  difficulty: CaseFileDifficulty;
};

export type CaseFile = {
  title: string;
  /** kebab-case, e.g. "the-stair-counter" */
  slug: string;
  introduction: string;
  /** exactly 8: 4 easy, 2 medium, 2 hard, in that order */
  chapters: CaseFileChapter[];
  patientName: string;
  /** e.g. "P-0413" */
  patientNumber: string;
  story: string;
  /** portrait description, under 1000 UTF-8 bytes */
  imageGenerationPrompt: string;
};

/** The difficulty of each chapter position, in order. */
export const CHAPTER_DIFFICULTIES: readonly CaseFileDifficulty[] = ["easy", "easy", "easy", "easy", "medium", "medium", "hard", "hard"];

const easy = (text: string): CaseFileChapter => ({ text, difficulty: "easy" });
const medium = (text: string): CaseFileChapter => ({ text, difficulty: "medium" });
const hard = (text: string): CaseFileChapter => ({ text, difficulty: "hard" });

export const caseFiles: CaseFile[] = [
  {
    title: "The Stair Counter",
    slug: "the-stair-counter",
    introduction:
      "Recovered from the east wing records room, box 4. The pages smell of candle smoke, and every margin is filled with numbers.",
    chapters: [
      easy("Edith Marrow counts the stairs every night. There are thirteen. She says each number out loud so the house can hear her."),
      easy("The nurses think it is a habit. Edith says it is a promise. If she stops counting, something else will start."),
      easy("On Tuesday she counted fourteen. She sat on the landing until dawn and would not say why."),
      easy("We checked the stairwell with a lamp. Thirteen steps of oak, worn pale in the middle. Nothing more."),
      medium(
        "By the end of the month she was counting sixteen. The night porter says he heard her voice going down long after it should have reached the cellar door.",
      ),
      medium(
        "Last night the porter counted with her, to humour her. He reached thirteen, then fourteen, and then he stopped talking and would not look at any of us.",
      ),
      hard(
        "Entry, 3 November 1968: patient missing at 02:40. Her slippers were found side by side on the thirteenth step, facing downward; the lamp beside them was still warm, though no one had lit it.",
      ),
      hard(
        "The stairwell was measured again on the 4th: thirteen steps, as always. But if you stand on the landing after midnight and count aloud, a woman's voice keeps counting after you stop, patiently, from somewhere far below.",
      ),
    ],
    patientName: "Edith Marrow",
    patientNumber: "P-0413",
    story:
      "Edith Marrow, a retired schoolteacher, spent her nights at Hollowell counting the thirteen steps of the east stairwell, convinced that her counting kept something below from climbing up. When her count began to grow, the staff humoured her, measured the stairs and found nothing wrong. In November 1968 she vanished from the landing, leaving her slippers on the last step. The stairwell still measures thirteen steps by daylight, but those who count it after midnight hear her answering from much further down.",
    imageGenerationPrompt:
      "Black-and-white clinical intake photograph of an elderly woman in a faded asylum nightgown, thin silver hair pinned back, seated rigidly against a stained plaster wall. Her lips are slightly parted as if mid-count and her eyes are fixed on a point just below the camera. Harsh flash, deep shadows, heavy film grain, water-damaged edges, 1960s psychiatric archive, dark and unsettling, photorealistic.",
  },
  {
    title: "The Line in the Walls",
    slug: "the-line-in-the-walls",
    introduction: "Transcribed from a ward notebook found inside a disconnected telephone box in the old admissions hall.",
    chapters: [
      easy("Thomas Vell worked the telephone exchange for thirty years. He still wears his headset, though the cord ends at his chest."),
      easy("He says the walls of Ward B are full of wire. He says someone is always calling."),
      easy("At night he sits very still and listens. Sometimes he nods. Sometimes he says, 'Hold, please.'"),
      easy("There is no telephone in Ward B. The nearest line is in the warden's office, two floors down."),
      medium(
        "Thomas began to connect calls for the other patients. He would tap the wall, wait, and tell them their mothers had rung, though most of their mothers were long dead.",
      ),
      medium(
        "Dr. Hale asked Thomas who was calling. Thomas looked sorry for him and said, 'It's you, Doctor; it was always you, and you just haven't placed the call yet.'",
      ),
      hard(
        "Incident note, 22:15: the exchange board in the basement, unused since 1952, was found with three cords plugged in; each jack was labelled in faded ink: B-7, B-9, and HALE (RESIDENCE).",
      ),
      hard(
        "Dr. Hale did not come to work on Monday. His housekeeper said the telephone rang all night, and that each time he answered, he listened without a word, then whispered, 'Yes. I'll hold.'",
      ),
    ],
    patientName: "Thomas Vell",
    patientNumber: "P-0127",
    story:
      "Thomas Vell, a switchboard operator for three decades, arrived at Hollowell still wearing his headset and insisting that the walls of Ward B carried a live line. He began putting calls through to the other patients, who soon stopped sleeping and started speaking with his patient, practised voice. When Dr. Hale demanded to know who was on the line, Thomas told him the caller was Hale himself. A dead switchboard in the basement was later found connected to Hale's own house, and Hale has been holding ever since.",
    imageGenerationPrompt:
      "Grainy monochrome asylum portrait of a gaunt man in his sixties wearing an old bakelite switchboard headset, its frayed cord dangling loose across a buttoned hospital gown. His head is tilted as if listening to the wall behind him, one finger raised for silence. Cracked plaster background, cold overhead light, deep vignette, 1950s clinical photograph, dust and scratches, quiet dread.",
  },
  {
    title: "Chalk Doors",
    slug: "chalk-doors",
    introduction: "From the children's annex, sealed in 1962. The file was tucked inside a biscuit tin full of broken chalk.",
    chapters: [
      easy("Margaret Lusk is eleven years old. She does not talk much, but she draws all day with white chalk."),
      easy("She only draws doors. Tall ones, small ones, doors with keyholes, doors with no handles at all."),
      easy("The orderlies wash them off every morning. By lunch there is a new one beside her bed."),
      easy("When asked where the doors go, Margaret said, 'Home.' When asked whose home, she did not answer."),
      medium(
        "A boy from the annex asked Margaret to draw him a door. The next morning his bed was made, his shoes were gone, and a small chalk door had appeared above his pillow.",
      ),
      medium(
        "The chalk was confiscated. Margaret began to draw with her fingernail instead, scratching faint outlines into the plaster, and the other children began to line up beside her bed.",
      ),
      hard(
        "Matron's report, 14 February 1962: eleven beds found empty at dawn; eleven doors scratched into the west wall of the dormitory, each one exactly the height of the child who had slept beside it.",
      ),
      hard(
        "Margaret was the last. The night staff say she drew one more door, turned to the window, and said, 'I left one for you, too.' It is still there, behind the wallpaper, and it is slightly open.",
      ),
    ],
    patientName: "Margaret Lusk",
    patientNumber: "P-0588",
    story:
      "Margaret Lusk was admitted to the children's annex at eleven and spent every waking hour drawing doors in chalk. When another child asked for a door of his own, he was gone by morning, and a picture of him waving appeared on the inside of the drawing. Taking away her chalk changed nothing: one by one the children of the annex lined up by her bed, until a February dawn found eleven beds empty. Margaret left last, and she left one more door behind, meant for whoever reads her file.",
    imageGenerationPrompt:
      "Faded black-and-white institutional photograph of an eleven-year-old girl in a plain grey smock, dark bobbed hair, chalk dust on her small fingers, standing before a plaster wall covered in faint hand-drawn doors. She looks directly at the camera with calm, knowing eyes. Soft window light, peeling paint, film grain, 1960s children's ward archive, eerie and photographic.",
  },
  {
    title: "The Sleeper in Ward C",
    slug: "the-sleeper-in-ward-c",
    introduction: "Night-shift observation log, Ward C, bound with string. Several pages are damp and have stuck together.",
    chapters: [
      easy("Arthur Penhallow has been asleep for nine years. He breathes slowly. He does not wake for noise, light, or pain."),
      easy("We turn him every four hours. We feed him broth. He has never once opened his eyes."),
      easy("This morning his bed was two feet from the wall. No one on the night shift moved it."),
      easy("There was mud on the soles of his feet. It was the dark red mud from the orchard by the chapel."),
      medium(
        "We put a chair against the door and a bell on his ankle. At three the bell rang once, softly, and when the nurse looked in, Arthur was lying exactly as before.",
      ),
      medium(
        "Nurse Okafor asked to be moved to days. She said she no longer wanted to hear her own name in his mouth, because each night he said it a little more like a goodbye.",
      ),
      hard(
        "Observation, 04:12: the patient sat upright with his eyes still closed, turned his face toward the window, and said clearly, 'Not yet; the ground is still too cold.' He then lay down and resumed sleeping.",
      ),
      hard(
        "On the first warm night of spring, Ward C was found empty; Arthur's bed had been carried out to the orchard and set beneath the oldest tree. He was asleep in it, smiling, and the hollow beside him had been filled in.",
      ),
    ],
    patientName: "Arthur Penhallow",
    patientNumber: "P-0301",
    story:
      "Arthur Penhallow had not woken in nine years, yet each morning his bed had shifted and his feet were caked with red mud from the chapel orchard. In his sleep he began reciting the names of the night staff like a register, lingering on Nurse Okafor's. Beneath the oldest tree in the orchard, someone had prepared a hollow lined with hospital sheets. On the first warm night of spring his bed was found beneath that tree, Arthur asleep and smiling, and the hollow beside him neatly filled.",
    imageGenerationPrompt:
      "Clinical monochrome photograph of a pale middle-aged man asleep in a narrow iron hospital bed, eyes closed, face peaceful yet unnaturally still, grey stubble, hands folded over a starched sheet. Dark orchard mud is visible on the bare soles of his feet at the edge of the frame. Dim night-ward lighting, heavy shadows, soft grain, 1950s asylum archive, hushed and ominous.",
  },
  {
    title: "The Late Reflection",
    slug: "the-late-reflection",
    introduction: "Interview transcripts, Dr. Ferris. Every mirror mentioned in these notes was later removed from the building.",
    chapters: [
      easy("Cordelia Ash says her reflection is late. Not by much. Only a moment behind her."),
      easy("She blinks, and it blinks after. She smiles, and it waits, and then it smiles too."),
      easy("Dr. Ferris held up a hand mirror and watched for an hour. He saw nothing strange."),
      easy("Cordelia said that was because it knew he was watching. It is always polite with guests."),
      medium(
        "We removed the mirrors from her room. She began to cover the window at night, because she said the glass grew dark enough for it to catch up.",
      ),
      medium(
        "Dr. Ferris set up a camera facing the washroom mirror. On the developed film, Cordelia stands still at the basin while her reflection leans closer to the glass.",
      ),
      hard(
        "Interview, 17 April, 10:05: 'It is ahead of me now, Doctor, by a second, maybe two. It knows where I'm going to stand. Yesterday it stood somewhere I haven't been yet.'",
      ),
      hard(
        "Cordelia was discharged on 2 May, calm and pleasant, and thanked every nurse by name. In the washroom she left behind, the mirror still shows a woman at the basin, waiting very patiently for someone to catch up.",
      ),
    ],
    patientName: "Cordelia Ash",
    patientNumber: "P-0742",
    story:
      "Cordelia Ash came to Hollowell convinced that her reflection ran a moment behind her. Dr. Ferris found nothing wrong until the delay closed, and then reversed: her reflection began to move first, to look at her before she turned, to stand where she had not yet gone. A camera pointed at the washroom mirror caught it leaning toward the glass while she stood still. In May a calm, courteous Cordelia was discharged, and the woman left waiting in the washroom mirror has not moved on since.",
    imageGenerationPrompt:
      "Black-and-white psychiatric archive portrait of a woman in her thirties with dark hair pinned up and a high-collared hospital dress, photographed beside an old silvered mirror. She faces straight ahead, but her reflection in the mirror is subtly turned toward the viewer. Cold clinical lighting, tarnished glass, grain and dust, 1950s asylum photograph, quietly wrong, photorealistic.",
  },
  {
    title: "Tomorrow's Diary",
    slug: "tomorrows-diary",
    introduction: "A pocket diary, leather, entries in pencil. Each page is dated one day ahead of the day it was written.",
    chapters: [
      easy("Lionel Graves writes in his diary every evening. He always writes about tomorrow."),
      easy("'Rain at noon, cold soup, Mr. Abbot drops his cup.' The next day, it rained at noon."),
      easy("The soup was cold. Mr. Abbot dropped his cup and cried. Lionel patted his hand kindly."),
      easy("The staff began to read the diary each night. Lionel did not mind. He left it open for them."),
      medium(
        "The entries grew longer. He described a fire alarm, a missing key, and a visitor in a grey coat, and on the following day each one arrived exactly on time.",
      ),
      medium(
        "The following page was blank. Lionel sat on his bed all night with the pencil in his hand, looking at it, as if waiting for the day to make up its mind.",
      ),
      hard(
        "Administrative memo, 1 October 1971: Hollowell Asylum is closed, effective immediately; all 212 patients have been transferred, per the enclosed list. The list contains 211 names.",
      ),
      hard(
        "The diary was found in 1989 by a surveyor, in a locked room on the third floor. The last page was no longer blank; it read, in fresh pencil, 'Someone comes today, finally. I will write about them tomorrow.'",
      ),
    ],
    patientName: "Lionel Graves",
    patientNumber: "P-0219",
    story:
      "Lionel Graves, a mild former bookkeeper, kept a diary in which every entry described the following day, and every entry came true, from cold soup to fire alarms. The staff read it nightly, first for amusement and then for warning. On the eve of Hollowell's closure he wrote that nobody would remember to let the last one out, and then faced a blank page. The transfer list was one name short. Eighteen years later a surveyor found the diary in a locked room, its final page freshly written.",
    imageGenerationPrompt:
      "Grainy black-and-white clinical portrait of a slight elderly man with round wire spectacles and neatly combed white hair, seated on an iron bed holding a small leather diary and a pencil stub. He glances up with a gentle, apologetic expression, as if he already knows what happens next. Dusty window light, peeling walls, 1970s asylum archive photograph, melancholy and uncanny.",
  },
  {
    title: "The Quiet Hymn",
    slug: "the-quiet-hymn",
    introduction: "Recovered from the chapel vestry. A sheet of music paper was folded inside, blank except for a title nobody can read.",
    chapters: [
      easy("Ada Winthrop hums the same tune every day. It is slow and soft, and it has no words."),
      easy("No one knows the song. The chaplain says it is not a hymn. Ada says it is older than hymns."),
      easy("She hums it while she eats, while she sleeps, and while the nurses brush her hair."),
      easy("Last week the woman in the next bed began to hum it too. She says she cannot stop."),
      medium(
        "By November half of Ward D was humming. They did it quietly and in perfect unison, and they all drew breath at the same moment, as if one chest breathed for all of them.",
      ),
      medium(
        "At night the pipes began to knock in rhythm. The boiler man swore the radiators were cold, yet in every ward the iron was singing, faintly, the same four falling notes.",
      ),
      hard(
        "Night report, 21 December, 01:30: all 46 patients of Ward D standing by their beds, facing the chapel, humming; staff unable to rouse them. The chapel bell, which has no rope, rang once.",
      ),
      hard(
        "By morning the humming had stopped, and Ada was gone. The patients cannot recall the tune, and neither can I; but I have written this entry twice now, and each time I catch my pen tapping out four falling notes.",
      ),
    ],
    patientName: "Ada Winthrop",
    patientNumber: "P-0655",
    story:
      "Ada Winthrop hummed a wordless tune that the chaplain could not place and that she claimed was older than any hymn. It spread through Ward D bed by bed, until dozens of patients breathed and hummed as one, and the cold radiators took up the same four falling notes. Ada said the song was a summons, and that the building had been answering it for years. On the longest night of the year the whole ward rose to face the chapel, the ropeless bell rang once, and by dawn Ada was gone.",
    imageGenerationPrompt:
      "Monochrome asylum intake photograph of a serene woman in her fifties with long grey hair in a loose braid, wearing a plain hospital shift, eyes half-closed and lips pressed together as if humming. Behind her, a dim chapel doorway and rows of empty iron beds. Soft candle-like light, heavy grain, scratched emulsion, 1950s psychiatric archive, hushed and eerie, photographic realism.",
  },
  {
    title: "The Man in Bed Nine",
    slug: "the-man-in-bed-nine",
    introduction: "A file with no admission form. The patient number was typed on a different machine from every other page.",
    chapters: [
      easy("There is a man in Bed 9. No one remembers admitting him. He has no papers and no name."),
      easy("He is polite and tidy. He folds his blanket each morning and thanks the nurses for breakfast."),
      easy("He knows every nurse by name. He asks after their children, and he gets the names right."),
      easy("Nurse Pell asked where he came from. He said, 'From your street, Miss Pell. Don't you remember me?'"),
      medium(
        "In private, each of us admitted that he seemed familiar. Each of us placed him differently: a neighbour, a teacher, a man who once stood too long outside a childhood window.",
      ),
      medium(
        "Dr. Imre asked him directly what he wanted. He smiled warmly and said he only wanted what everyone here wants: to be remembered by someone, properly, for once.",
      ),
      hard(
        "Staff meeting, 6 March, 15:00: by unanimous vote, Bed 9 is to be removed from Ward A. Note: the motion was recorded, signed by eight staff members, and then, somehow, filed under 'Discharged'.",
      ),
      hard(
        "Bed 9 is still in Ward A. It is made up neatly every morning, and the blanket is folded. If you are reading this, he has already mentioned you by name; he says you used to wave to him, and that he has waited a long time for you to come in.",
      ),
    ],
    patientName: "Unknown Male, Bed 9",
    patientNumber: "P-0909",
    story:
      "Nobody at Hollowell remembered admitting the courteous man in Bed 9, yet every member of staff felt they had known him once, somewhere just out of reach. He knew their children's names and their oldest secrets, and asked only to be properly remembered. The records showed Bed 9 occupied, nameless, in every ledger since the asylum opened. When the staff voted to remove the bed, their motion filed itself as a discharge. The bed remains, freshly made, and he has begun to speak of the people who read about him.",
    imageGenerationPrompt:
      "Black-and-white clinical photograph of an ordinary, pleasant-looking man of indeterminate age in a neatly buttoned hospital gown, sitting on the edge of a made iron bed stencilled with the number 9. His face is oddly familiar and hard to focus on, with a warm, patient smile. Flat institutional light, grey walls, grain and soft blur, mid-century asylum archive, deeply unsettling.",
  },
  {
    title: "The Second Sitter",
    slug: "the-second-sitter",
    introduction: "An envelope of contact sheets and a ward diary, found in the darkroom beneath the infirmary.",
    chapters: [
      easy("Helena Voss took portraits for a living. She says every photograph has two sitters."),
      easy("One sitter faces the camera. The other stands just behind, where the light does not reach."),
      easy("She was admitted after she burned down her studio. She says she was only letting them out."),
      easy("The staff gave her a box camera as therapy. She photographs the nurses, one at a time."),
      medium(
        "On the developed prints, every nurse is sharp and clear. Behind each of them, slightly out of focus, stands a tall figure with one hand resting on their shoulder.",
      ),
      medium(
        "Helena asked to photograph Dr. Imre. He refused, and she nodded as if she had expected it, because his figure, she said, had grown tired of waiting to be seen.",
      ),
      hard(
        "Darkroom inventory, 12 June: 31 prints developed from 24 exposures. Seven of the prints show the empty staff room at night, each from the same angle, each with one more figure standing in it.",
      ),
      hard(
        "The last roll was found still in the camera. It holds a single portrait of Helena, smiling, taken from inside her locked room; behind her, half in shadow, a second Helena is holding the camera.",
      ),
    ],
    patientName: "Helena Voss",
    patientNumber: "P-0833",
    story:
      "Helena Voss, a society portrait photographer, was committed after setting fire to her own studio, claiming every photograph holds a second, hidden sitter. Given a box camera for therapy, she photographed the nurses, and each print showed a tall blurred figure with a hand on their shoulder. She called them the people the nurses would become, and the nurses began to change. The darkroom produced more prints than there were exposures. Her final roll holds one portrait of Helena, taken by another Helena standing behind her.",
    imageGenerationPrompt:
      "Grainy black-and-white portrait of a striking woman in her forties with cropped dark hair and sharp cheekbones, wearing a hospital gown with an old box camera on a strap around her neck. She stares into the lens with unsettling intensity. Just behind her shoulder, a tall blurred silhouette stands in shadow. Chemical stains, faded darkroom tones, 1950s asylum archive photograph, dark and photographic.",
  },
  {
    title: "The Night Rounds",
    slug: "the-night-rounds",
    introduction:
      "A personnel file converted into a patient file on 8 August 1970. The first half is in her handwriting. The second half is too.",
    chapters: [
      easy("Ruth Calloway was a night nurse at Hollowell for twelve years. She was careful, kind, and never late."),
      easy("Her round sheets were always complete. Every patient, every hour, one small neat tick."),
      easy("In July she fell ill and stayed home in bed. Her round sheets kept coming in."),
      easy("The ticks were in her handwriting. The porter said he saw her on the stairs, carrying her lamp."),
      medium(
        "Ruth came back to the asylum to prove it was not her. She sat awake in the warden's office all night while the round sheets upstairs filled up, one tick at a time.",
      ),
      medium(
        "By August Ruth no longer went home. At her own request she was admitted as a patient to the ward she had nursed for twelve years, in the bed nearest the lamp.",
      ),
      hard(
        "Round sheet, 8 August 1970, 02:00 to 06:00: every patient ticked, every hour, in Ruth's careful hand; beside Bed 14, her own bed, the note reads: 'Sleeping peacefully. Do not wake her. I'll take it from here.'",
      ),
      hard(
        "Ruth Calloway has not woken since. The night rounds at Hollowell are still done on time, though the building is empty, and if you stand in Ward E after midnight you can see a lamp moving slowly, bed to bed, checking on no one.",
      ),
    ],
    patientName: "Ruth Calloway",
    patientNumber: "P-0470",
    story:
      "Ruth Calloway was Hollowell's most dependable night nurse, so when she fell ill and stayed home, nobody could explain why her round sheets kept arriving, ticked hour by hour in her own hand. She returned to prove her innocence and felt the cold of the ward floor through her feet while sitting two storeys below. Exhausted, she asked to be admitted to her own ward. On her first night as a patient, the round sheet noted that she was sleeping peacefully and should not be woken. She never has been.",
    imageGenerationPrompt:
      "Monochrome clinical photograph of a tired woman in her forties in a starched 1960s nurse's uniform and white cap, seated upright in a hospital bed, eyes open but unfocused, an unlit oil lamp on the bedside table. Her hands rest on a clipboard of round sheets filled with neat ticks. Deep night shadows, single cold light source, grain, water stains, asylum archive, haunting.",
  },
];
