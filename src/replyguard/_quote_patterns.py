"""Per-client, per-language patterns for reply zoning (data, not logic).

All patterns run on *folded* lines (see ``replyguard._text.fold``: lower case,
no accents, ``ß`` -> ``s``), so they are written without accents. Every pattern
is anchored and length-bounded, so none can backtrack catastrophically.
"""

from __future__ import annotations

import re

# "On <date>, <name> wrote:" and its localized forms (Gmail, Apple Mail,
# Thunderbird, Yahoo). Lead words: en on, es/pt el/em, fr le, de am, it il / il giorno,
# nl op. Verbs: wrote, escribio, a ecrit, schrieb, escreveu, ha scritto, schreef,
# "heeft ... het volgende geschreven".
_LEADS = r"(?:on|el|le|am|em|il giorno|il|op|den|w dniu|no dia|a|el dia|le jour)"
_VERBS = (
    r"(?:wrote|escribio|a ecrit|ecrivait|schrieb|escreveu|ha scritto|scrive|schreef|"
    r"het volgende geschreven|heeft geschreven|skrev|kirjoitti|napisal)"
)
ON_WROTE = re.compile(
    rf"^\s*\*?{_LEADS}\s.{{0,220}}?\b{_VERBS}\b[^\n]{{0,140}}?:\s*\*?\s*$"
)
# "<name> <email> wrote:" without a lead word (some webmails, mailing lists).
NAME_WROTE = re.compile(
    rf"^\s*[^\s>][^\n]{{0,160}}?(?:@|\d{{1,2}}[:.]\d{{2}})[^\n]{{0,120}}?\b{_VERBS}\s*:\s*$"
)

# Dashed separators of Outlook, Samsung, Gmail and Apple forwards, localized.
_SEP_WORDS = (
    r"(?:original message|original-nachricht|originalnachricht|ursprungliche nachricht|"
    r"ursprunglich(?:e)? nachricht|mensaje original|message d'origine|message original|"
    r"mensagem original|messaggio originale|messaggio originario|oorspronkelijk bericht|"
    r"origineel bericht|forwarded message|forwarded e-?mail|mensaje reenviado|"
    r"message transfere|weitergeleitete nachricht|mensagem encaminhada|mensagem reencaminhada|"
    r"messaggio inoltrato|doorgestuurd bericht|reply message|reply|antwort)"
)
SEPARATOR = re.compile(rf"^\s*[-=_*]{{2,}}\s*{_SEP_WORDS}\s*[-=_*]{{2,}}\s*$")
FORWARD_WORDS = re.compile(
    r"forward|reenviado|transfere|weitergeleitet|encaminhad|reencaminhad|inoltrat|doorgestuurd"
)
BEGIN_FORWARD = re.compile(
    r"^\s*(?:begin forwarded message|inicio del mensaje reenviado|comienzo del mensaje reenviado|"
    r"debut du message reexpedie|debut du message transfere|anfang der weitergeleiteten nachricht|"
    r"inicio da mensagem reencaminhada|inicio da mensagem encaminhada|inizio messaggio inoltrato|"
    r"messaggio inoltrato|begin doorgestuurd bericht|begin van doorgestuurd bericht)\s*:?\s*$"
)
UNDERSCORES = re.compile(r"^\s*_{8,}\s*$")

# Outlook-style header fields, localized. "from" starts a block; the rest confirm it.
FROM_FIELD = re.compile(
    r"^\s*[*>]?\s*\*?(?:from|de|von|van|da|fra|od|envoye par|expediteur|remitente|absender|mittente|afzender)\s?\*?\s?:\s?\*?\s*\S"
)
OTHER_FIELD = re.compile(
    r"^\s*[*>]?\s*\*?(?:sent|date|to|subject|cc|bcc|enviado(?: el)?|enviada(?: em)?|enviado em|"
    r"fecha|data|datum|date d'envoi|envoye|a|para|asunto|assunto|objet|an|gesendet|betreff|"
    r"verzonden|verstuurd|aan|onderwerp|inviato|oggetto|per|cc|kopie|copie|sent on|"
    r"sent at)\s?\*?\s?:"
)

# Signature separators and mobile / webmail footers.
SIG_DASHES = re.compile(r"^(?:-- ?|--|__|\u2014)\s*$")
MOBILE_FOOTER = re.compile(
    r"^\s*(?:sent from|sent via|sent with|sent using|envoye de|envoye depuis|envoye avec|"
    r"envoye a partir|von meinem|von mein|gesendet von|gesendet mit|gesendet vom|"
    r"enviado desde|enviado de mi|enviado do|enviado a partir|enviado pelo|enviado via|"
    r"inviato da|inviato dal|inviato con|verstuurd vanaf|verzonden vanaf|verzonden met|"
    r"verstuurd met|verstuurd vanuit|get outlook for|obtener outlook para|obtenga outlook|"
    r"outlook fur (?:ios|android)|outlook for (?:ios|android)|outlook herunterladen|"
    r"telecharger outlook|obtenir outlook|baixe o outlook|baixar o outlook|obter o outlook|"
    r"scarica outlook|ottieni outlook|outlook voor (?:ios|android)|download outlook|"
    r"haal outlook|get the .{1,20} app)\b[^\n]{0,80}$"
)
DISCLAIMER = re.compile(
    r"^\s*(?:\*+\s*)?(?:[^\n]{0,40}(?:confiden|riservat|vertraulich|vertrouwelijk|disclaimer|"
    r"privacy notice|aviso legal|privacidade|avertissement)[^\n]{0,25}:|confidential|confidentiality|privileged|disclaimer|important notice|"
    r"this (?:e-?mail|message|communication|transmission)\b[^\n]{0,60}\b(?:confidential|"
    r"intended|privileged|may contain|contains)|the information (?:contained|in this)|"
    r"please consider the environment|"
    r"think before you print|aviso legal|aviso de confidencialidad|confidencialidad|"
    r"este (?:mensaje|correo|e-?mail)\b[^\n]{0,60}\b(?:confidencial|destinatario|dirigido|"
    r"contiene)|la informacion contenida|"
    r"avis de confidentialite|ce (?:message|courriel|e-?mail)\b[^\n]{0,60}\b(?:confidenti|"
    r"destin|contien)|les informations contenues|"
    r"haftungsausschluss|vertraulichkeit|diese (?:e-?mail|nachricht)\b[^\n]{0,60}\b(?:vertraulich|"
    r"enthalt|bestimmt)|"
    r"esta mensagem\b[^\n]{0,60}\b(?:confidencia|destinat|contem)|"  # confidencial, confidenciais
    r"este e-?mail\b[^\n]{0,60}\b(?:confidencia|destinat)|"
    r"(?:questo|il presente) (?:messaggio|e-?mail|comunicazione)\b[^\n]{0,60}\b(?:riservat|destinat|"
    r"confidenzial|contien)|"
    r"le informazioni contenute|"
    r"dit (?:bericht|e-?mailbericht|e-?mail)\b[^\n]{0,60}\b(?:vertrouwelijk|uitsluitend|"
    r"bestemd)|de informatie (?:in|verzonden))"
)
# Openings that start a disclaimer only when a recipient / error / delete word follows
# within a few lines (a disclaimer always says whom the message was meant for or that it
# arrived in error): on their own they start ordinary sentences of a reply ("If you are
# not going to stop...", "Si no es algo de energia...", "Ai sensi del GDPR cancellate...").
DISCLAIMER_WEAK = re.compile(
    r"^\s*(?:\*+\s*)?(?:notice:|(?:avvertenza|avviso|aviso|atencao|attenzione|hinweis|warning|avis)\s*:|if you (?:are not|have received|received) |si (?:usted )?(?:no es|ha recibido)|"
    r"si vous (?:n'etes pas|avez recu)|wenn sie nicht der|sollten sie diese|falls sie diese|"
    r"se voce (?:nao e|recebeu)|se (?:avete|hai) ricevuto|ai sensi del|indien u (?:niet|dit)|"
    r"(?:the )?contents? of this (?:e-?mail|message)|der inhalt dieser|de inhoud van dit|"
    r"le contenu de ce|il contenuto di questa|el contenido de este|o conteudo desta)"
)
DISCLAIMER_CUE = re.compile(
    r"recipient|addressee|destinat|empfanger|adressat|geadresseerde|bestemd|intended|irrtum|"
    r"per errore|por error|por engano|par erreur|in error|by mistake|erroneamente|abusivement|disclosure"
)
# A closing line: a valediction alone, optionally followed by a short name.
VALEDICTION = re.compile(
    # longest first: the regex takes the first alternative that fits
    r"^\s*(?:danke (?:&|und) gruse?|danke (?:&|und) grusse|thanks (?:&|and) regards|thx (?:&|and) regards|"
    r"obrigad[oa] (?:&|e) abracos?|gracias y saludos|merci et bonne journee|grazie e saluti|"
    r"dank en groet|bjs|beijos?|beijinhos|bj|abs|abracos|met vriendelijke groeten|mit freundlichen grussen|reciba un cordial saludo|"
    r"mit freundlichen grusen|many thanks in advance|met vriendelijke groet|"
    r"mit freundlichen gruse|grus|melhores cumprimentos|liebe grusse aus \S+|sincères salutations|"
    r"viele grusse aus \S+|vriendelijke groeten|viele gruse aus \S+|freundliche grusse|"
    r"hartelijke groeten|mit besten grussen|thanks and regards|vriendelijke groet|"
    r"bien cordialement|cordiales saludos|freundliche gruse|saludos cordiales|thank you so much|"
    r"thanks in advance|tres cordialement|un cordial saludo|hartelijke groet|herzliche grusse|"
    r"mit besten gruse|cordiali saluti|distinti saluti|herzliche gruse|kindest regards|"
    r"sincerely yours|warmest regards|yours sincerely|alvast bedankt|atenciosamente|"
    r"buona giornata|merci beaucoup|merci d'avance|muchas gracias|muchos saludos|thanks so much|"
    r"un caro saluto|belle journee|bonne journee|grande abraco|schone grusse|all the best|"
    r"best regards|beste grusse|cordialement|cordialmente|cumprimentos|forte abraco|"
    r"grazie mille|kind regards|liebe grusse|quedo atenta|quedo atento|respectfully|"
    r"schone gruse|tante grazie|thanks again|viele grusse|warm regards|amicalement|atentamente|"
    r"best wishes|beste gruse|besten dank|bien a vous|buon lavoro|danke schon|liebe gruse|"
    r"many thanks|salutations|viele gruse|vielen dank|warm wishes|yours truly|dank u wel|"
    r"a bientot|met groet|saudacoes|sincerely|take care|talk soon|thank you|um abraco|"
    r"un abrazo|un saludo|un saluto|a presto|all best|groetjes|obrigada|obrigado|abracos|"
    r"abrazos|bedankt|dank je|gracias|groeten|regards|saludos|a plus|abraco|bisous|"
    r"cheers|dank u|grazie|grusse|saluti|thanks|besos|best,|bises|brgds|danke|groet|gruse|gruss|"
    r"merci|yours|best|grtz|rgds|abs|att|mfg|mvg|thx|br|gr|lg|tx|ty|vg)\b"
)
# What may follow a valediction on its line, checked on the original (unfolded)
# line: punctuation and a capitalised name of up to four words ("Best, Ana M.").
NAME_TAIL = re.compile(
    r"^[\s,.!:;-]*(?:[A-Z\u00c0-\u00de\u0100-\u024f][\w.'-]*(?:\s+[A-Z\u00c0-\u00de\u0100-\u024f][\w.'-]*){0,3})?\s*[.!]?\s*$"
)
# A signature line: short, or a phone / url / email / title-like line.
CONTACT_LINE = re.compile(
    r"(?:\+?\d[\d\s().-]{6,}\d|https?://|www\.|\S+@\S+\.\w+|\|)"
)

# Our own email offering to stop ("Should I stop reaching out?", "shall I close your
# file?"): a short "yes please" above it is an opt-out, a "no, don't" is not. Searched
# in the quoted history (folded) of short replies only; bounded, no nested repeats.
STOP_OFFER = re.compile(
    r"\b(?:should|shall|can|may) (?:i|we) (?:just )?(?:stop|close|remove you|take you off|leave you alone|"
    r"unsubscribe you|take you out)"
    r"|\b(?:want|like|prefer) (?:me|us) to (?:stop|close|remove you|take you off|leave you alone)"
    r"|\b(?:close|closing) (?:out )?(?:your|the) file\b"
    r"|\b(?:dejo|dejamos|deje|dejemos) de (?:le |les |te |os )?(?:escribir|enviar|contactar|insistir)"
    r"|\b(?:cierro|cerramos|cierre) (?:su|tu) (?:expediente|ficha|caso)"
    r"|\b(?:paro|paramos|deixo|deixamos|deixemos|paremos) de (?:lhe |lhes |te |vos |o |a )?(?:escrever|enviar|mandar|contactar|insistir)"
    r"|\b(?:encerro|encerramos|fecho|fechamos) (?:o )?(?:seu|teu) (?:cadastro|processo|contacto|contato)"
    r"|\b(?:dois-je|devons-nous|faut-il|dois je|devons nous|faut il) (?:arreter|cesser|fermer|clore|vous retirer|vous desinscrire)"
    r"|\b(?:je ferme|nous fermons|je clos|je cloture) (?:votre|ton) dossier"
    r"|\b(?:soll|sollen|darf|durfen) (?:ich|wir) (?:[\w-]{1,20} ){0,5}(?:austragen|entfernen|nicht mehr|aufhoren|in ruhe lassen)"
    r"|\b(?:akte|vorgang) (?:schliessen|schlieen|schlie\w{1,3}en)"
    r"|\b(?:devo|dobbiamo|posso|possiamo) (?:smettere|chiudere|rimuoverla|rimuoverti|cancellarla|cancellarti|toglierla|toglierti)"
    r"|\b(?:chiudo|chiudiamo) (?:la sua|la tua|il suo|il tuo) (?:pratica|scheda|fascicolo)"
    r"|\b(?:zal|moet|zullen|moeten|mag) (?:ik|we|wij) (?:[\w-]{1,20} ){0,5}(?:stoppen|ophouden|uitschrijven|afmelden|met rust laten)"
    r"|\bdossier (?:sluiten|afsluiten)\b"
)
# First words of a short answer to that offer.
ANSWER_YES = frozenset(
    "yes yeah yep yup ya sure please ok okay correct absolutely definitely indeed do go "
    "si claro vale dale porfa oui ouais volontiers evidemment ja gerne bitte jawohl genau klar "
    "sim pode certo certamente esatto graag jazeker prima akkoord".split()
)
ANSWER_NO = frozenset("no nope nah non nein nee neen nao don dont not never keep niet nicht".split())
